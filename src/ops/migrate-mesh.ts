import type { FlatMapping } from "../config/flatten.ts";
import { MESH_MAJOR_KEY, memberName, parseNeighbours, targetMeshMajor, type Neighbour, type YggdrasilMajor } from "../mesh/neighbours.ts";
import { majorFromUsage } from "../mesh/yggdrasil/version.ts";
import { REMOTE_INSTALL_DIR, sshSettings } from "../remote/settings.ts";
import { describeTarget, sshRun, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { ClusterUnavailable, UserError, errorMessage } from "../util/errors.ts";
import { clusterFor, type Cluster } from "./cluster/cluster.ts";
import type { MemberRow } from "./cluster/wire.ts";
import type { Context } from "./context.ts";
import { storeLearned } from "./learn.ts";
import { provisioners, runBootstrap } from "./slave.ts";

/** How often the wait after the switch asks the cluster whether every member is back. */
const POLL_MS = 1000;

export interface MigrateOptions {
  /** The major to move to (only 0.5 makes sense today; 0.4 is accepted for a way back). */
  readonly to: YggdrasilMajor;
  /** The server type whose provisioners install Yggdrasil on the members (slave's default: headless). */
  readonly serverType: string;
  /** How long to wait, after the switch, for every member to be alive again on `to`. */
  readonly timeoutMs: number;
  /** One line per step, for the user. */
  readonly progress: (line: string) => void;
}

export interface MigrationReport {
  readonly to: YggdrasilMajor;
  /** Every member already ran `to` and the cluster had chosen it: nothing was done. */
  readonly already: boolean;
  readonly members: readonly { readonly name: string; readonly host: string }[];
  /** Milliseconds from the switch (MESH_MAJOR_KEY written) until every member was alive again on `to`. */
  readonly backAfterMs?: number;
}

/** A member to migrate: its neighbour entry and how the operator reaches it. */
interface Target {
  readonly neighbour: Neighbour;
  readonly name: string;
  readonly ssh: SshTarget;
}

/**
 * Moves a running cluster to another Yggdrasil major (0.4 → 0.5), in two phases so that the
 * mesh is split only for the moment of the switch, never while packages install:
 *
 * 1. stage: on every member, over SSH and all at once, the server type's provisioners (from this
 *    machine's own config: bootstraps are code, never taken from a member) run again
 *    with RAPTIFORMICA_YGGDRASIL_MAJOR=`to` (the stock bootstrap installs the new Yggdrasil; the
 *    running one keeps its old binary in memory and the mesh is untouched), then the installed
 *    binary is checked. Any failure stops here: nothing has switched.
 * 2. switch: MESH_MAJOR_KEY is written to the cluster KV. Every agent sees it through its watch
 *    within a second and restarts yggdrasil on the new binary with the same key, so with the
 *    same mesh address (node/step-mesh.ts `followMigration`); the cluster is back when every
 *    member is alive again and records `to`, which is waited for (bounded by `timeoutMs`).
 *
 * Refuses a cluster without quorum, and one with members that are not alive or that the operator
 * cannot reach over SSH (they would be cut off): each is named with what to do.
 * @throws UserError for those refusals, for a member whose staging failed (naming each), and when
 *   members are not back within `timeoutMs` (naming them and what to do); ClusterUnavailable
 *   when the KV does not answer at the start.
 */
export async function migrateMesh(ctx: Context, opts: MigrateOptions): Promise<MigrationReport> {
  const cluster = clusterFor(ctx);
  // A member that is a learner for a moment (just joined, not promoted yet) cannot serve reads:
  // ask again for a while before giving up.
  const mapping = await whileUnavailable(() => cluster.readConfig());
  const answer = await whileUnavailable(() => cluster.members());
  if (answer.quorum === false) {
    throw new UserError(`The cluster has no quorum${answer.error ? ` (${answer.error})` : ""}, so it cannot be migrated now: a member that misses the switch would be cut off. Bring the cluster back first (\`raptiformica members\` says how it stands).`);
  }
  const targets = migrationTargets(mapping, answer.members);
  const all = targets.map((t) => ({ name: t.name, host: t.ssh.host }));
  if (targetMeshMajor(mapping) === opts.to && targets.every((t) => t.neighbour.yggdrasilMajor === opts.to)) {
    await learn(ctx, cluster, mapping);
    return { to: opts.to, already: true, members: all };
  }

  const settings = await sshSettings(ctx.paths, ctx.log);
  opts.progress(`staging Yggdrasil ${opts.to} on ${targets.length} member(s): ${targets.map((t) => t.name).join(", ")}`);
  // The bootstrap commands are code: from this machine's own config, never from the members'
  // (README, "Trust model"); the members give only data (who they are, where they are).
  const own = ctx.config.snapshot().mapping;
  const staged = await Promise.allSettled(targets.map((t) => stage(ctx, settings, t, own, opts)));
  const failed = staged.flatMap((r, i) => (r.status === "rejected" ? [`${(targets[i] as Target).name}: ${errorMessage(r.reason)}`] : []));
  if (failed.length > 0) {
    throw new UserError(
      `Staging Yggdrasil ${opts.to} failed on ${failed.length} of ${targets.length} member(s), so nothing was switched: the mesh still runs as before. ${failed.join(" ")} Fix that and run migrate-mesh again (members where staging worked keep the new binary installed; their running yggdrasil does not use it before the switch).`,
    );
  }

  opts.progress(`switching: ${MESH_MAJOR_KEY} = ${opts.to}`);
  const t0 = Date.now();
  await cluster.setConfig(MESH_MAJOR_KEY, opts.to);
  const { late, mapping: after } = await waitForSwitch(cluster, targets, opts);
  if (after) await learn(ctx, cluster, after);
  if (late.length > 0) {
    throw new UserError(
      `The cluster switched to Yggdrasil ${opts.to}, but ${late.join(", ")} ${late.length === 1 ? "is" : "are"} not alive on it after ${Math.round(opts.timeoutMs / 1000)} s. ` +
        `Look at the agent log on ${late.length === 1 ? "it" : "each"} (\`raptiformica ssh\`, then node/log/agent.log under the cache dir); \`raptiformica slave HOST\` hands such a member the config again and installs what is missing.`,
    );
  }
  return { to: opts.to, already: false, members: all, backAfterMs: Date.now() - t0 };
}

/**
 * The members to migrate (pure): every neighbour that has not left, by name and SSH target.
 * @throws UserError naming the members that are not alive, or that have no host the operator can
 *   reach them on: either would be cut off by the switch.
 */
export function migrationTargets(mapping: FlatMapping, rows: readonly MemberRow[]): Target[] {
  const status = new Map(rows.map((r) => [r.publicKey, r.status]));
  const neighbours = parseNeighbours(mapping).filter((n) => !n.left);
  const named = neighbours.map((n) => ({ neighbour: n, name: n.name ?? memberName(n.publicKey) }));
  const down = named.filter((t) => status.get(t.neighbour.publicKey) !== "alive");
  if (down.length > 0) {
    throw new UserError(
      `Not migrating: ${down.map((t) => `${t.name} (${status.get(t.neighbour.publicKey) ?? "not in members"})`).join(", ")} ${down.length === 1 ? "is" : "are"} not alive, and would be cut off from the mesh by the switch. ` +
        `Bring ${down.length === 1 ? "it" : "them"} back, or remove ${down.length === 1 ? "it" : "them"} (\`raptiformica members --evict\`, or \`clean\` on the machine), then run migrate-mesh again.`,
    );
  }
  const hostless = named.filter((t) => !t.neighbour.host);
  if (hostless.length > 0) {
    throw new UserError(
      `Not migrating: ${hostless.map((t) => t.name).join(", ")} ${hostless.length === 1 ? "has" : "have"} no address this machine can reach over SSH (a member behind NAT), so the new Yggdrasil cannot be installed there. ` +
        `Install it there by hand (README, "Distributions"), then run migrate-mesh again from a machine that reaches every member.`,
    );
  }
  return named.map((t) => ({ ...t, ssh: { host: t.neighbour.host as string, port: t.neighbour.sshPort } }));
}

/** Phase 1 on one member: the provisioners of `own` (this machine's config) with the new major, then the installed binary checked. */
async function stage(ctx: Context, s: SshSettings, t: Target, own: FlatMapping, opts: MigrateOptions): Promise<void> {
  for (const p of provisioners(own, opts.serverType)) {
    if (!p.bootstrap) continue;
    // Where slave put it: a provisioner with a source in /usr/etc/<name>, else the install dir.
    const dir = p.source ? `/usr/etc/${p.name}` : REMOTE_INSTALL_DIR;
    await runBootstrap(ctx, s, t.ssh, { name: p.name, bootstrap: p.bootstrap, dir }, opts.serverType, opts.to);
  }
  const out = await sshRun(s, t.ssh, ["sh", "-c", "yggdrasil -h 2>&1"], { timeoutMs: 30_000 });
  const got = majorFromUsage(out.stdout);
  if (got !== opts.to) {
    throw new UserError(
      `${describeTarget(t.ssh)} has ${got ? `Yggdrasil ${got}` : "no usable yggdrasil on root's PATH"} after staging, not ${opts.to}: install Yggdrasil ${opts.to} there (README, "Distributions").`,
    );
  }
  opts.progress(`  ${t.name} (${t.ssh.host}): Yggdrasil ${opts.to} installed`);
}

/** How long the first reads wait out a cluster that does not answer (a learner being promoted, an election). */
const UNAVAILABLE_WAIT_MS = 30_000;

/**
 * `read()`, asked again every 2 s while it throws ClusterUnavailable, for UNAVAILABLE_WAIT_MS.
 * @throws the last ClusterUnavailable when the cluster never answered; any other error at once.
 */
async function whileUnavailable<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + UNAVAILABLE_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      if (!(e instanceof ClusterUnavailable) || Date.now() >= deadline || attempt > 100) throw e;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * An operator machine keeps its copy of the cluster's data in step (the chosen major among it),
 * so that its next `slave` or `spawn` installs 0.5 on the new host; data only (ops/learn.ts).
 */
async function learn(ctx: Context, cluster: Cluster, mapping: FlatMapping): Promise<void> {
  if (cluster.where === "member") await storeLearned(ctx, mapping, "the cluster");
}

/**
 * Phase 2's wait: the members (names) not alive on `to` when `timeoutMs` ran out ([] when all
 * are), and the shared config as last read (undefined if it never answered).
 */
async function waitForSwitch(cluster: Cluster, targets: readonly Target[], opts: MigrateOptions): Promise<{ late: string[]; mapping: FlatMapping | undefined }> {
  const deadline = Date.now() + opts.timeoutMs;
  let late = targets.map((t) => t.name);
  let last: FlatMapping | undefined;
  for (let round = 0; Date.now() < deadline && round < 100_000; round++) {
    try {
      const [rows, mapping] = [await cluster.members(), await cluster.readConfig()];
      last = mapping;
      const alive = new Set(rows.members.filter((r) => r.status === "alive").map((r) => r.publicKey));
      const major = new Map(parseNeighbours(mapping).map((n) => [n.publicKey, n.yggdrasilMajor]));
      late = targets.filter((t) => !alive.has(t.neighbour.publicKey) || major.get(t.neighbour.publicKey) !== opts.to).map((t) => t.name);
      if (late.length === 0) return { late: [], mapping };
    } catch {
      // The KV is down while the members switch: ask again.
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return { late, mapping: last };
}
