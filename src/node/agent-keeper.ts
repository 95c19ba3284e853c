import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import type { NodePaths } from "./paths.ts";
import { Supervisor, type ServiceSpec } from "./supervisor.ts";

/** The supervised name (pidfile `run/agent-keeper.pid`) of the agent's keeper. */
export const KEEPER_SERVICE = "agent-keeper";

/** The keeper script, in raptiformica's install dir (pushed with it). */
export function keeperScript(installDir: string): string {
  return join(installDir, "bin", "raptiformica-agent-keeper");
}

/**
 * The keeper of this node's agent where systemd is not PID 1: `sh bin/raptiformica-agent-keeper`
 * (see that script) running `agent` argv with this cache dir. Its config hash covers the
 * agent's command and the script's text, so a keeper of an older install is replaced.
 * @throws the fs error when the keeper script cannot be read.
 */
export function keeperSpec(o: { installDir: string; node: NodePaths; cacheDir: string; agentArgv: readonly string[] }): ServiceSpec {
  const script = keeperScript(o.installDir);
  const text = readFileSync(script, "utf8");
  const args = [script, o.node.agentLock, join(o.node.logDir, "agent.log"), ...o.agentArgv];
  return {
    name: KEEPER_SERVICE,
    command: "sh",
    args,
    // Few glibc malloc arenas: the agent is nearly idle and single-threaded in practice.
    env: { ...process.env, RAPTIFORMICA_CACHE_DIR: o.cacheDir, MALLOC_ARENA_MAX: "2" },
    configHash: createHash("sha256").update(JSON.stringify(args)).update(text).digest("hex").slice(0, 16),
  };
}

/**
 * Starts the keeper unless one runs with the same spec (a keeper of an older install or for
 * another command is stopped first, with the agent it started). `restart`: start it afresh even
 * so — when no agent runs, a keeper pausing up to 30 s between starts of an agent that keeps
 * exiting would otherwise leave the node without one that long. Concurrent `mesh` runs are
 * serialized, so one node never gets two keepers.
 * @returns whether a keeper was started.
 */
export async function ensureKeeper(node: NodePaths, spec: ServiceSpec, restart = false): Promise<boolean> {
  const sup = new Supervisor(node.runDir, node.logDir);
  const release = await lockfile.lock(node.runDir, {
    realpath: false,
    lockfilePath: join(node.runDir, `${KEEPER_SERVICE}.start.lock`),
    stale: 15_000,
    retries: { retries: 100, factor: 1.3, minTimeout: 20, maxTimeout: 200 },
  });
  try {
    return (await sup.ensure(spec, { restart })) !== "running";
  } finally {
    await release();
  }
}

/** Whether a keeper runs for this node. */
export function keeperRuns(node: NodePaths): boolean {
  return new Supervisor(node.runDir, node.logDir).isRunning(KEEPER_SERVICE);
}

/** Stops the keeper (SIGTERM: it stops the agent it started, then exits) so nothing restarts the agent. */
export async function stopKeeper(node: NodePaths): Promise<void> {
  await new Supervisor(node.runDir, node.logDir).stop(KEEPER_SERVICE, 20_000);
}
