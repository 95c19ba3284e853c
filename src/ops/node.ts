import { existsSync } from "node:fs";
import { join } from "node:path";
import { homedir } from "node:os";
import { findInstallDir, resolveCacheDir } from "../config/paths.ts";
import { installUnit, renderUnit, systemdIsInit, unitName } from "../node/systemd.ts";
import type { CachePaths } from "../config/paths.ts";
import type { LocalConfig } from "../config/local.ts";
import { caOrNew, caMapping, caFromMapping, ensureNodeCertificate } from "../consensus/pki.ts";
import { memberName, withNeighbour } from "../mesh/neighbours.ts";
import { yggdrasilBinary } from "../mesh/yggdrasil/version.ts";
import { MESH_PASSWORD_KEY, newMeshPassword } from "../mesh/yggdrasil/password.ts";
import { displayName } from "../node/agent.ts";
import { pokeAgent, runningAgent } from "../node/agent-lock.ts";
import { ensureKeeper, keeperSpec } from "../node/agent-keeper.ts";
import { memberSettings } from "../node/last-good-settings.ts";
import { nodePaths, type NodePaths } from "../node/paths.ts";
import { buildId, readStatus, type AgentStatus } from "../node/status.ts";
import { UserError } from "../util/errors.ts";
import { waitUntil } from "../util/wait.ts";
import { readAdvertised } from "../node/advertised.ts";
import { loadNodeIdentity, requireClusterMajor, selfEntry, type NodeIdentity } from "../node/self.ts";
import type { Context } from "./context.ts";
import { makePrivateDir } from "../util/private-dir.ts";

export type { NodeIdentity };

/**
 * This node's Yggdrasil and key pair (node/self.ts `loadNodeIdentity`, made once under the
 * cache dir's node/).
 * @throws UserError when no usable yggdrasil is installed here, or its key cannot be made or read.
 */
export async function nodeIdentity(cache: CachePaths): Promise<NodeIdentity> {
  return loadNodeIdentity(nodePaths(cache.node).yggdrasilDir, yggdrasilBinary());
}

/**
 * Everything `mesh` needs before the agent starts: the node identity, the cluster CA (made
 * once, on the first node, and shared through the config like the original's secrets), and
 * this node's neighbour entry in the local config. Refuses a cluster of mixed Yggdrasil majors.
 * @throws UserError when yggdrasil is missing, the cluster mixes Yggdrasil majors, the advertised address is unusable, or the config cannot be written.
 */
export async function prepareNode(cache: CachePaths, local: LocalConfig): Promise<NodeIdentity> {
  const id = await nodeIdentity(cache);
  const snapshot = local.snapshot().mapping;
  requireClusterMajor(snapshot, id);
  const { ca } = await caOrNew(snapshot);
  const settings = memberSettings(snapshot, nodePaths(cache.node));
  const advertised = readAdvertised(cache.lastAdvertised);
  if (!advertised.ok) throw new UserError(advertised.error);
  await local.update((m) => {
    // A new cluster (no CA yet) gets its mesh password with its CA; a cluster made before
    // passwords existed keeps running without one (see mesh/yggdrasil/password.ts).
    if (!caFromMapping(m)) Object.assign(m, caMapping(ca), m[MESH_PASSWORD_KEY] === undefined ? { [MESH_PASSWORD_KEY]: newMeshPassword() } : {});
    // Always written here (the agent writes only a changed entry): `mesh` is the moment the
    // local config must hold this node, the CA beside it.
    return withNeighbour(m, selfEntry(m, { ...id, yggdrasilPort: settings.yggdrasilPort, name: displayName() }, advertised.value).entry);
  });
  // Issue the node certificate here rather than in the agent: the X.509 code then never loads
  // into the long-lived agent (see pki.ts).
  const stored = caFromMapping(local.snapshot().mapping) ?? ca;
  await ensureNodeCertificate(nodePaths(cache.node), stored, memberName(id.identity.publicKey), id.identity.address);
  return id;
}

/**
 * The agent is long-lived and mostly idle: no JIT, a small young generation and a bounded old
 * generation keep its resident memory near 60 MB (instead of ~75) at well under 1 % CPU. The
 * heap it needs is ~10 MB at rest; 96 MB is room for the bursts of a 50-node cluster forming
 * (32 MB, then 64 MB ran out there while etcd stalled); the limit does not change the resident
 * memory at rest. WebAssembly is
 * off explicitly (jitless cannot run it, and would say so in the log at every start).
 */
export const AGENT_NODE_FLAGS = ["--jitless", "--no-expose-wasm", "--max-semi-space-size=1", "--optimize-for-size", "--max-old-space-size=96"];

/** Whether the agent runs as a systemd unit here (systemd is PID 1 and we are root), not under its keeper. */
function underSystemd(): boolean {
  return systemdIsInit() && process.getuid?.() === 0 && Boolean(process.argv[1]) && !process.env["RAPTIFORMICA_NO_SYSTEMD"];
}

/**
 * Makes sure the agent runs, and runs again whenever it exits: as a systemd unit where systemd
 * is PID 1 (restarted on exit, started at boot), else under its keeper, a small detached
 * process that restarts it (src/node/agent-keeper.ts). An agent of an older build is stopped
 * first, so the new one runs the installed code. Returns its pid when known (else -1), and
 * `log`: where its output goes (`journalctl -u <unit>`, or its agent.log), for messages.
 * @throws UserError when systemd refuses the unit (daemon-reload, enable --now).
 */
export async function ensureAgent(cache: CachePaths): Promise<{ pid: number; started: boolean; log: string }> {
  const node = nodePaths(cache.node);
  const script = process.argv[1];
  const log = agentLog(cache, node);
  let running = runningAgent(node);
  if (running !== undefined) {
    const status = readStatus(node.status);
    const installed = buildId(script);
    if (status?.pid === running && status.build && installed && status.build !== installed) {
      // An older build runs (raptiformica was pushed again): restart it onto the new code. Its
      // yggdrasil and etcd keep running (detached); the new agent adopts them.
      await stopProcess(running, 15_000);
      running = undefined;
    }
  }
  if (underSystemd()) {
    if (running !== undefined) return { pid: running, started: false, log };
    const name = unitName(cache.root, resolveCacheDir(undefined, {}));
    await installUnit(name, renderUnit({ node: process.execPath, nodeFlags: AGENT_NODE_FLAGS, script: script as string, cacheDir: cache.root, home: homedir() }));
    await waitUntil(() => runningAgent(node) !== undefined, { timeoutMs: 5000, intervalMs: 100 });
    return { pid: runningAgent(node) ?? -1, started: true, log };
  }
  if (!script) throw new Error("cannot tell which script to run the agent from");
  makePrivateDir(node.logDir);
  // An agent that runs without a keeper (started by hand, or the keeper was killed) is watched
  // by the new keeper, not replaced.
  const spec = keeperSpec({ installDir: findInstallDir(), node, cacheDir: cache.root, agentArgv: [process.execPath, ...process.execArgv, ...AGENT_NODE_FLAGS, script, "agent"] });
  await ensureKeeper(node, spec, running === undefined);
  if (running !== undefined) return { pid: running, started: false, log };
  const pid = await waitUntil(() => runningAgent(node), { timeoutMs: 5000, intervalMs: 50 });
  return { pid: pid ?? -1, started: true, log };
}

/** Where the agent's output goes, for messages: the journal of its unit where systemd runs it, else its log file. */
function agentLog(cache: CachePaths, node: NodePaths): string {
  if (underSystemd()) return `\`journalctl -u ${unitName(cache.root, resolveCacheDir(undefined, {}))}\``;
  return join(node.logDir, "agent.log");
}

/**
 * `members --rejoin`: one reconcile of this member now (what the cluster_change hook does): its
 * running agent is told to (`poked`), or, when none runs, the agent is started (`started`),
 * which reconciles as it starts.
 * @throws UserError when this machine has no node state (it never ran `mesh`).
 */
export async function rejoinNow(ctx: Pick<Context, "paths" | "node">): Promise<"poked" | "started"> {
  if (!existsSync(ctx.node.yggdrasilDir)) throw new UserError(`This machine is not a cluster member (no node state in ${ctx.node.root}); run \`raptiformica mesh\` first.`);
  if (pokeAgent(ctx.node)) return "poked";
  await ensureAgent(ctx.paths);
  return "started";
}

/** SIGTERM, then SIGKILL if it has not exited within `ms`. */
async function stopProcess(pid: number, ms: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  await waitUntil(() => !alive(), { timeoutMs: ms, intervalMs: 100 });
  if (alive()) process.kill(pid, "SIGKILL");
}

/** How long `mesh` lets a node be without an agent (its keeper or systemd restarts one within a second or two) before it says so. */
export const NO_AGENT_GRACE_MS = 10_000;

/** What waitForReady needs to know of the agent besides its status file. */
export interface AgentWatch {
  /** Whether an agent runs for this node now (runningAgent). */
  readonly runs: () => boolean;
  /**
   * The pid of the agent that runs now (runningAgent): only a status it wrote counts. An agent
   * stopped for a newer build may write its last status after `mesh` began; taken for the new
   * one's, `mesh` returned before the new agent had said anything (seen in CI).
   */
  readonly current?: () => number | undefined;
  /** Starts the agent again (ensureAgent): called once, when none has run for a while. */
  readonly restart?: () => Promise<void>;
  /** How long no agent may run before `restart`, and as long again before giving up (ms). */
  readonly graceMs?: number;
}

/**
 * Why a node is not ready, from the last status the agent wrote at or after `since` (epoch ms)
 * — an older one (from before `mesh` started, or before a reboot) says nothing about now and is
 * never quoted, so the message cannot call the node "ready" while it is not.
 */
export function notReadyReason(last: AgentStatus | undefined, since: number): string {
  if (!last || last.updatedAt < since) return "the agent has not reported since `mesh` started";
  return `it is "${last.phase}"${last.consensus ? ` (${last.consensus})` : ""}${last.lastError ? `, last error: ${last.lastError}` : ""}`;
}

/**
 * Waits (bounded by `timeoutMs`) until the agent reports `ready` in a status written at or
 * after `since` (epoch ms): meshed, consensus running, record written. `log` is where the
 * agent's output goes (ensureAgent's `log`), named in the error. With `agent`, it also watches
 * that an agent runs: after `graceMs` without one it starts it again (`restart`), and after as
 * long again without one it gives up at once instead of waiting out `timeoutMs`.
 * @throws UserError saying what phase the agent is stuck in, or that no agent runs, and where
 *   its log is, when it does not get there in time.
 */
export async function waitForReady(node: NodePaths, timeoutMs: number, since: number, log = join(node.logDir, "agent.log"), agent?: AgentWatch): Promise<AgentStatus> {
  let last: AgentStatus | undefined;
  const grace = agent?.graceMs ?? NO_AGENT_GRACE_MS;
  let seen = Date.now();
  let restarted = false;
  let gone = false;
  const ready = await waitUntil(
    async () => {
      last = readStatus(node.status);
      if (last && last.updatedAt >= since && last.phase === "ready" && (agent?.current === undefined || last.pid === agent.current())) return last;
      if (!agent) return undefined;
      if (agent.runs()) seen = Date.now();
      else if (Date.now() - seen >= grace) {
        if (restarted || !agent.restart) return (gone = true);
        restarted = true;
        await agent.restart();
        seen = Date.now();
      }
      return undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
  if (ready && !gone) return ready as AgentStatus;
  if (gone) {
    throw new UserError(
      `No agent runs for this node: it exited${restarted ? ", was started again and exited again" : ""}, and none has run for ${Math.round(grace / 1000)} s. ` +
        `See ${log} for why; \`raptiformica mesh\` starts it again.`,
    );
  }
  throw new UserError(
    `This node did not become ready within ${Math.round(timeoutMs / 1000)} s: ${notReadyReason(last, since)}. The agent keeps trying in the background; see ${log}.`,
  );
}
