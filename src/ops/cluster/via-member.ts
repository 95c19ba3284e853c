import { normalizeKey, type FlatMapping } from "../../config/flatten.ts";
import { NEIGHBOURS_PREFIX } from "../../mesh/neighbours.ts";
import { remoteCommand, sshSettings } from "../../remote/settings.ts";
import { sshStream, type SshTarget } from "../../remote/ssh.ts";
import { KeyNotSet, errorMessage } from "../../util/errors.ts";
import type { Outcome } from "../../util/exec.ts";
import type { Logger } from "../../util/log.ts";
import type { Context } from "../context.ts";
import type { NeighbourRegistration } from "../inject.ts";
import { clusterIdOf, type ClusterId } from "../../consensus/cluster-id.ts";
import { memberTargets, onFirstChannel, type MemberCheck } from "../via-member.ts";
import type { Cluster } from "./cluster.ts";
import { memberError, memberFailure } from "./member-cli.ts";
import { SshNodeChannel, type NodeChannel } from "./node-channel.ts";
import { checkAnswer, checkBeforeWrite, reportedClusterId, shownConfigClusterId } from "./same-cluster.ts";
import { UserError } from "../../util/errors.ts";
import { fenceAnswer, jobAnswer, jobSubmitted, jobsAnswer, type FenceAnswer, type JobAnswer, type JobSubmitted, type JobsAnswer } from "./job-wire.ts";
import { jobRunArgv, type JobRequest } from "../job/jobs.ts";
import { pickRun } from "../job/logs.ts";
import { memberTargetByKey } from "../pick-member.ts";
import { z } from "zod";
import { decodeAnswer, decodeFullConfig, linksAnswer, membersAnswer, type LinksAnswer, type MembersAnswer } from "./wire.ts";

/**
 * The members a {@link ViaMember} may ask, in the order it asks them, and what it knows of its
 * own side: the cluster this machine manages (a member of another is passed over) and the log
 * that a member's warnings are passed on to.
 */
export interface MemberPool {
  /** The candidates, in order (made on first use: SSH settings are read then). */
  members(): Promise<readonly NodeChannel[]>;
  /** The cluster this machine manages (its copy's CA), undefined when it knows none. */
  mine(): ClusterId | undefined;
  readonly log: Logger;
  /**
   * Runs `raptiformica ARGV` on one given member (by its key; `name` for messages), reached the
   * way `raptiformica ssh NAME` reaches it (its host in this machine's config, else in the
   * cluster's, read through `clusterConfig`), with its stdout written to `out` as it comes.
   * Resolves with its outcome (stdout empty). Absent where members cannot be reached one by one.
   * @throws UserError when that member has no host or cannot be reached over SSH.
   */
  streamOn?(member: { publicKey: string; name: string }, argv: readonly string[], out: (b: Buffer) => void, clusterConfig: () => Promise<FlatMapping>): Promise<Outcome>;
}

/**
 * The members this machine reaches over root SSH: those `mapping` names (the first 3 with a
 * host, like the original) or the `targets` given (all of them, in that order), raptiformica
 * being the launcher of this machine's config there. Throws nothing; `members()` rejects when
 * the SSH settings cannot be read (sshSettings).
 */
export function sshMembers(ctx: Context, mapping: FlatMapping, opts: { targets?: readonly SshTarget[] } = {}): MemberPool {
  const launcher = remoteCommand(ctx.config.snapshot().mapping);
  const targets = opts.targets ?? memberTargets(mapping).slice(0, 3);
  return {
    log: ctx.log,
    mine: () => clusterIdOf(ctx.config.snapshot().mapping),
    members: async () => {
      if (targets.length === 0) return [];
      const settings = await sshSettings(ctx.paths, ctx.log);
      return targets.map((t) => new SshNodeChannel(settings, t, launcher));
    },
    streamOn: async (member, argv, out, clusterConfig) => {
      // This machine's copy first; a member that joined after it was last written is in the cluster's.
      const target = memberTargetByKey(mapping, member.publicKey) ?? memberTargetByKey(await clusterConfig(), member.publicKey);
      if (!target) {
        throw new UserError(
          `Member ${member.name} (key ${member.publicKey.slice(0, 16)}…) is not among the neighbours in this machine's config nor the cluster's, so it cannot be reached over SSH from here (it left, or was evicted). Its log stayed on that machine.`,
        );
      }
      const settings = await sshSettings(ctx.paths, ctx.log);
      return sshStream(settings, target, [launcher, ...argv], out);
    },
  };
}

/**
 * The cluster through the first of a {@link MemberPool}'s members that answers (over SSH from an
 * operator: sshMembers; the lab reaches its nodes through `ip netns exec`), running
 * raptiformica's CLI there. What the member prints
 * on stderr besides its answer (a warning that it answered from its cache …) is passed on to
 * this machine's log; a command that fails there fails here with the member's own message and
 * exit code. When this machine manages a cluster, only a member of that cluster is used: reads
 * check the cluster the answer names, writes ask the member's identity first (same-cluster.ts);
 * a member of another cluster is passed over like an unreachable one.
 */
export class ViaMember implements Cluster {
  readonly where = "member";

  constructor(private readonly pool: MemberPool) {}

  private async run(argv: readonly string[], check: MemberCheck): Promise<{ member: NodeChannel; who: string; out: Outcome }> {
    const { member, out } = await onFirstChannel(await this.pool.members(), argv, check);
    return { member, who: member.who, out };
  }

  /** A write: sent only to a member that says it is in this machine's cluster. */
  private write(argv: readonly string[]): Promise<{ member: NodeChannel; who: string; out: Outcome }> {
    return this.run(argv, checkBeforeWrite(this.pool.mine()));
  }

  /**
   * Runs the write argv there; its stderr is passed on, a non-zero exit thrown as its own error
   * (memberFailure: a KeyNotSet for `key` when the member says it is not set).
   */
  private async ok(argv: readonly string[], key?: string): Promise<{ member: NodeChannel; stdout: string }> {
    const { member, out } = await this.write(argv);
    if (out.exitCode === 0) {
      this.pass(out.stderr);
      return { member, stdout: out.stdout };
    }
    this.pass(memberError(out.stderr).before);
    throw memberFailure(out, argv, key);
  }

  private pass(stderr: string): void {
    if (stderr.trim()) this.pool.log.info(stderr.replace(/\n$/, ""));
  }

  async members(): Promise<MembersAnswer> {
    const { who, out } = await this.run(["members", "--json"], checkAnswer(this.pool.mine(), (out) => reportedClusterId(out.stdout)));
    // Its own messages are in the answer (`error`, `problems`): stderr is only quoted when
    // the answer cannot be read.
    return decodeAnswer(membersAnswer, out, who, "members --json");
  }

  async links(): Promise<LinksAnswer> {
    const { who, out } = await this.run(["links", "--json"], checkAnswer(this.pool.mine(), (out) => reportedClusterId(out.stdout)));
    return decodeAnswer(linksAnswer, out, who, "links --json");
  }

  async readConfig(): Promise<FlatMapping> {
    const argv = ["config", "show", "--json"];
    const { who, out } = await this.run(argv, checkAnswer(this.pool.mine(), (out) => (out.exitCode === 0 ? shownConfigClusterId(out.stdout) : undefined)));
    if (out.exitCode !== 0) {
      this.pass(memberError(out.stderr).before);
      throw memberFailure(out, argv);
    }
    this.pass(out.stderr);
    return decodeFullConfig(out.stdout, who);
  }

  async setConfig(key: string, value: string): Promise<void> {
    // `--`: a key or value that starts with `-` is a value there too, not an option.
    await this.ok(["config", "set", "--", key, value]);
  }

  async deleteConfig(key: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.ok(["config", "delete", ...(opts.recursive ? ["--recursive"] : []), "--", key], normalizeKey(key));
  }

  /**
   * The config afterwards is read with a second call on the member that took the registration
   * (another one may not have it yet); undefined when that one fails (the registration stands).
   */
  async inject(r: NeighbourRegistration): Promise<{ inCluster: boolean; config?: FlatMapping }> {
    const { member } = await this.ok(["inject", "--port", String(r.sshPort), "--key", r.publicKey, ...(r.yggdrasilPort ? ["--yggdrasil-port", String(r.yggdrasilPort)] : []), "--", r.host]);
    const there = new ViaMember({ members: async () => [member], mine: () => this.pool.mine(), log: this.pool.log });
    const config = await there.readConfig().catch((e: unknown) => {
      this.pool.log.debug(`the config after registering ${r.host} could not be read: ${errorMessage(e)}`);
      return undefined;
    });
    return { inCluster: true, ...(config ? { config } : {}) };
  }

  /** One `config delete --recursive` per key; an entry already gone (KeyNotSet) is fine. */
  async forgetNeighbours(publicKeys: readonly string[]): Promise<void> {
    for (const key of publicKeys) {
      try {
        await this.deleteConfig(`${NEIGHBOURS_PREFIX}${key}`, { recursive: true });
      } catch (e) {
        if (!(e instanceof KeyNotSet)) throw e;
      }
    }
  }

  /** A read of jobs there: its answer names its cluster; a failure there fails here with its message and exit code. */
  private async readJson<S extends z.ZodTypeAny>(schema: S, argv: readonly string[]): Promise<z.infer<S>> {
    const { who, out } = await this.run(argv, checkAnswer(this.pool.mine(), (o) => (o.exitCode === 0 ? reportedClusterId(o.stdout) : undefined)));
    if (out.exitCode !== 0) {
      this.pass(memberError(out.stderr).before);
      throw memberFailure(out, argv);
    }
    this.pass(out.stderr);
    return decodeAnswer(schema, out, who, argv.join(" "));
  }

  async jobRun(r: JobRequest): Promise<JobSubmitted> {
    const argv = jobRunArgv(r);
    const { member, stdout } = await this.ok(argv);
    return decodeAnswer(jobSubmitted, { stdout, stderr: "", exitCode: 0 }, member.who, "job run --json");
  }

  jobList(): Promise<JobsAnswer> {
    return this.readJson(jobsAnswer, ["job", "ls", "--json"]);
  }

  jobShow(name: string): Promise<JobAnswer> {
    return this.readJson(jobAnswer, ["job", "show", "--json", "--", name]);
  }

  async jobCancel(name: string): Promise<boolean> {
    const { member, stdout } = await this.ok(["job", "cancel", "--json", "--", name]);
    return decodeAnswer(z.object({ cancelled: z.boolean() }), { stdout, stderr: "", exitCode: 0 }, member.who, "job cancel --json").cancelled;
  }

  jobFenceCheck(name: string, fence: string): Promise<FenceAnswer> {
    return this.readJson(fenceAnswer, ["job", "fence-check", "--json", "--", name, fence]);
  }

  async jobLogs(name: string, o: { run?: string; follow?: boolean }, out: (b: Buffer | string) => void, note: (s: string) => void): Promise<void> {
    if (o.follow) return this.followLog(name, o.run, out, note);
    const { stdout } = await this.ok(["job", "logs", ...(o.run !== undefined ? ["--run", o.run] : []), "--", name]);
    out(stdout);
    note(`(through a member: the whole log when it ran the run, else the last 4 KiB and where the whole log is)`);
  }

  /**
   * `job logs --follow` from an operator machine: the run (`run`, else the latest started, as
   * on a member: pickRun) is looked up through the first reachable member, then `raptiformica
   * job logs NAME --run ID --follow` runs on the member that ran it, over SSH (argv, quoted word
   * by word), its output written to `out` as it comes, until the run ends there (or ssh is
   * ended: Ctrl-C). A non-zero exit there is thrown with its own message and exit code.
   * @throws UserError naming the member and what to do when it cannot be reached; the errors of
   * jobShow (no such job, exit 66) and pickRun (no such run).
   */
  private async followLog(name: string, runId: string | undefined, out: (b: Buffer | string) => void, note: (s: string) => void): Promise<void> {
    const job = await this.jobShow(name);
    const run = pickRun(job, runId);
    if (!this.pool.streamOn) throw new UserError(`\`job logs --follow\` needs the member that ran the run: \`raptiformica ssh ${run.member} -- raptiformica job logs ${name} --run ${run.id} --follow\`.`);
    const argv = ["job", "logs", "--run", run.id, "--follow", "--", name];
    let res: Outcome;
    try {
      res = await this.pool.streamOn({ publicKey: run.publicKey, name: run.member }, argv, out, () => this.readConfig());
    } catch (e) {
      throw new UserError(
        `Cannot follow the log of run ${run.id} of job ${name} on member ${run.member}, the member that ran it (its whole log is there only): ${errorMessage(e).replace(/\.?$/, ".")} ` +
          `Once ${run.member} is reachable over SSH, run this again (or \`raptiformica ssh ${run.member} -- raptiformica job logs ${name} --run ${run.id} --follow\`); ` +
          `\`raptiformica job logs ${name} --run ${run.id}\` without --follow prints the run's last 4 KiB from the KV through any member.`,
      );
    }
    if (res.exitCode !== 0) {
      this.pass(memberError(res.stderr).before);
      throw memberFailure(res, argv);
    }
    if (res.stderr.trim()) note(res.stderr.replace(/\n$/, ""));
  }

  async jobRemove(name: string): Promise<{ runs: number }> {
    const { member, stdout } = await this.ok(["job", "rm", "--json", "--", name]);
    return decodeAnswer(z.object({ runs: z.number() }), { stdout, stderr: "", exitCode: 0 }, member.who, "job rm --json");
  }
}
