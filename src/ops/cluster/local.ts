import { keyProblem, keysUnder, normalizeKey, type FlatMapping } from "../../config/flatten.ts";
import { readVoterLog, type VoterLogEntry } from "../../consensus/voters.ts";
import { readOnceMoreIfDropped } from "../../consensus/client.ts";
import { neighbourPrefix, withoutNeighbours } from "../../mesh/neighbours.ts";
import { runningAgent } from "../../node/agent-lock.ts";
import { SharedConfig } from "../../node/shared-config.ts";
import { EXIT_CLUSTER_UNAVAILABLE, KeyNotSet, UserError, errorMessage } from "../../util/errors.ts";
import { refuseNewConfigProblems } from "../config-checks.ts";
import type { Context } from "../context.ts";
import { registerNeighbour, type NeighbourRegistration } from "../inject.ts";
import { cachedMembers, clusterMembers } from "../members.ts";
import { readClusterLinks } from "../links.ts";
import { NO_MEMBER_KNOWN } from "../via-member.ts";
import { isMember } from "./member.ts";
import type { Cluster } from "./cluster.ts";
import type { ClusterProblem, LinksAnswer, MemberRow, MembersAnswer } from "./wire.ts";
import type { FenceAnswer, JobAnswer, JobSubmitted, JobsAnswer } from "./job-wire.ts";
import { jobLogsLocal } from "../job/logs.ts";
import { readStatus } from "../../node/status.ts";
import { cancelLocal, fenceCheckLocal, removeLocal, listLocal, showLocal, submitLocal, type JobRequest } from "../job/jobs.ts";
import type { Etcd3 } from "etcd3";

/** A key that would be both a value and a folder cannot be represented in the module format. */
function conflictFor(mapping: FlatMapping, key: string): string | undefined {
  const below = keysUnder(mapping, key).filter((k) => k !== key);
  if (below.length > 0) return `${key} already has ${below.length} key(s) below it (e.g. ${below[0]})`;
  const parts = key.split("/");
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join("/");
    if (mapping[parent] !== undefined) return `${parent} already holds a value`;
  }
  return undefined;
}

/**
 * The cluster through this machine's own KV client (SharedConfig): on a member, the cluster KV
 * when it answers (else its cached copy, with a warning); on a machine that knows no member,
 * its own mutable config.
 */
export class LocalCluster implements Cluster {
  readonly where = "here";

  constructor(private readonly ctx: Context) {}

  private async withShared<T>(fn: (shared: SharedConfig) => Promise<T>, opts: { quiet?: boolean } = {}): Promise<T> {
    const shared = await SharedConfig.open(this.ctx.config, this.ctx.node, this.ctx.log, opts);
    try {
      return await fn(shared);
    } finally {
      shared.close();
    }
  }

  /**
   * Throws a UserError when this machine is no member and knows none. A member whose KV does
   * not answer gets what its cache knows (`quorum` false, `error` saying why and what to do).
   */
  async members(): Promise<MembersAnswer> {
    const ctx = this.ctx;
    // Not a member (and knowing none, or clusterFor would have gone through one): no one to ask.
    if (!isMember(ctx)) throw new UserError(NO_MEMBER_KNOWN);
    const { mapping } = ctx.config.snapshot();
    // Quiet: unusable keys in the KV are listed with the problems instead.
    return this.withShared(
      async (shared) => {
        let rows: MemberRow[];
        let problems: ClusterProblem[];
        let changes: VoterLogEntry[] = [];
        try {
          if (!shared.client) throw new Error("no member answers on 127.0.0.1 or over the mesh");
          const client = shared.client;
          ({ rows, problems } = await readOnceMoreIfDropped(() => clusterMembers(client, ctx.node)));
          changes = await readVoterLog(shared.client).catch(() => []);
        } catch (e) {
          const why = errorMessage(e);
          const error =
            `The cluster KV does not answer on this member (${why}): etcd has lost quorum or is not running here. ` +
            `Showing what the local cache knows; statuses are unknown. The agent keeps retrying` +
            (runningAgent(ctx.node) === undefined ? " — but no agent runs here: start it with `raptiformica mesh`." : ".") +
            " If voters are gone for good (quorum cannot come back), run `raptiformica recover` on the surviving voter with the newest data.";
          return { quorum: false, error, members: cachedMembers(mapping) };
        }
        return { quorum: true, members: rows, voterChanges: changes, problems };
      },
      { quiet: true },
    );
  }

  /**
   * The links from the KV's link reports. Throws a UserError when this machine is no member and
   * knows none; a member whose KV does not answer gets the members its cache knows and no links
   * (`quorum` false, `error` saying why).
   */
  async links(): Promise<LinksAnswer> {
    const ctx = this.ctx;
    if (!isMember(ctx)) throw new UserError(NO_MEMBER_KNOWN);
    return this.withShared(
      async (shared) => {
        try {
          if (!shared.client) throw new Error("no member answers on 127.0.0.1 or over the mesh");
          const client = shared.client;
          return { quorum: true, ...(await readOnceMoreIfDropped(() => readClusterLinks(client))) };
        } catch (e) {
          const error =
            `The cluster KV does not answer on this member (${errorMessage(e)}): etcd has lost quorum or is not running here, ` +
            "and the link reports live only there. Showing the members the local cache knows, without links; `raptiformica members` says more.";
          const members = cachedMembers(ctx.config.snapshot().mapping).map((m) => ({ name: m.name, publicKey: m.publicKey, status: m.status }));
          return { quorum: false, error, members, links: [], problems: [] };
        }
      },
      { quiet: true },
    );
  }

  /** On a member whose KV did not answer, one warning says this is its cached copy. */
  async readConfig(): Promise<FlatMapping> {
    return this.withShared(async (shared) => {
      const { mapping } = await shared.snapshot();
      if (shared.memberUnreachable) {
        this.ctx.log.warn(
          `the cluster KV did not answer on this member: this is the member's cached copy of the shared config (${this.ctx.config.paths.mutableConfig}), which may be out of date.`,
        );
      }
      return mapping;
    });
  }

  async setConfig(key: string, value: string): Promise<void> {
    const k = normalizeKey(key);
    const problem = keyProblem(k);
    if (problem) throw new UserError(`Cannot set config key "${key}": ${problem}.`);
    await this.withShared((s) =>
      s.update((m) => {
        const conflict = conflictFor(m, k);
        if (conflict) throw new UserError(`Cannot set config key ${k}: ${conflict}. Delete it first with \`raptiformica config delete --recursive\`.`);
        const after = { ...m, [k]: value };
        refuseNewConfigProblems(m, after, `Setting ${k} to ${JSON.stringify(value)}`);
        return after;
      }),
    );
    this.ctx.log.debug(`set ${k}`);
  }

  async deleteConfig(key: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const k = normalizeKey(key);
    await this.withShared((s) =>
      s.update((m, kv) => {
        const targets = opts.recursive ? keysUnder(m, k) : m[k] !== undefined ? [k] : [];
        // Keys in the KV no config can hold (`a b`, `x//y`) are deleted by their exact name,
        // or with the folder they are in: this is how they are removed.
        const unusable = kv.unusable.map((u) => u.key).filter((u) => (opts.recursive ? u === k || u.startsWith(`${k}/`) : u === k || u === key));
        for (const u of unusable) kv.drop(u);
        if (targets.length === 0 && unusable.length === 0) {
          const below = keysUnder(m, k).length;
          const hint = below > 0 && !opts.recursive ? ` It has ${below} key(s) below it; add --recursive to delete them all.` : "";
          throw new KeyNotSet(k, `Config key ${k} is not set; nothing was deleted.${hint}`);
        }
        const after = { ...m };
        for (const t of targets) delete after[t];
        // Deleting a setting brings back its default, which may not fit the others (heartbeat vs election).
        refuseNewConfigProblems(m, after, `Deleting ${k}`);
        this.ctx.log.debug(`deleted ${targets.length + unusable.length} key(s)`);
        return after;
      }),
    );
  }

  async inject(r: NeighbourRegistration): Promise<{ inCluster: boolean; config: FlatMapping }> {
    const { mapping, inCluster } = await registerNeighbour(this.ctx, r);
    return { inCluster, config: mapping };
  }

  /** One write: the entries of every key go together. */
  async forgetNeighbours(publicKeys: readonly string[]): Promise<void> {
    await this.withShared(async (shared) => {
      const { mapping } = await shared.snapshot();
      const present = publicKeys.filter((key) => Object.keys(mapping).some((k) => k.startsWith(neighbourPrefix(key))));
      if (present.length > 0) await shared.update((m) => withoutNeighbours(m, present));
    });
  }

  /**
   * Runs `fn` with the cluster KV's client. Throws a UserError when this machine is no member
   * (and knows none), or when the KV does not answer here (jobs live only there).
   */
  private withKv<T>(what: string, fn: (client: Etcd3) => Promise<T>): Promise<T> {
    if (!isMember(this.ctx)) throw new UserError(NO_MEMBER_KNOWN);
    return this.withShared(
      async (shared) => {
        if (!shared.client) {
          throw new UserError(
            `The cluster KV does not answer on this member, and jobs live only there: cannot ${what}. ` +
              "`raptiformica members` says whether the cluster has quorum; try again once it does.",
            EXIT_CLUSTER_UNAVAILABLE,
          );
        }
        return fn(shared.client);
      },
      { quiet: true },
    );
  }

  jobRun(r: JobRequest): Promise<JobSubmitted> {
    return this.withKv(`store job ${r.name}`, (c) => submitLocal(c, r));
  }

  jobList(): Promise<JobsAnswer> {
    return this.withKv("list the jobs", (c) => readOnceMoreIfDropped(() => listLocal(c)));
  }

  jobShow(name: string): Promise<JobAnswer> {
    return this.withKv(`show job ${name}`, (c) => readOnceMoreIfDropped(() => showLocal(c, name)));
  }

  jobCancel(name: string): Promise<boolean> {
    return this.withKv(`cancel job ${name}`, (c) => cancelLocal(c, name));
  }

  jobLogs(name: string, o: { run?: string; follow?: boolean }, out: (b: Buffer | string) => void, note: (s: string) => void): Promise<void> {
    const self = readStatus(this.ctx.node.status)?.publicKey;
    return this.withKv(`read the log of job ${name}`, (c) => jobLogsLocal(c, name, { ...o, logDir: this.ctx.node.logDir, ...(self ? { self } : {}), out, note }));
  }

  jobRemove(name: string): Promise<{ runs: number }> {
    return this.withKv(`remove job ${name}`, (c) => removeLocal(c, name));
  }

  jobFenceCheck(name: string, fence: string): Promise<FenceAnswer> {
    return this.withKv(`check a fence of job ${name}`, (c) => fenceCheckLocal(c, name, fence));
  }
}
