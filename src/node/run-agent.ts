import { LocalConfig } from "../config/local.ts";
import { cachePaths, findInstallDir, resolveCacheDir, CACHE_DIR_ENV, type CachePaths } from "../config/paths.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { Agent } from "./agent.ts";
import { acquireAgentLock } from "./agent-lock.ts";
import { nodePaths, type NodePaths } from "./paths.ts";
import { buildId } from "./status.ts";

/** What a companion of the agent gets from the agent's process: this member's paths, log and config. */
export interface AgentProcess {
  readonly cache: CachePaths;
  readonly node: NodePaths;
  readonly installDir: string;
  readonly log: Logger;
  readonly local: LocalConfig;
}

/** Something that runs beside the agent in its process (the mesh map's server) until `stop`. */
export interface AgentCompanion {
  stop(): Promise<void> | void;
}

/**
 * Starts a companion. It must not throw later from timers or callbacks (the agent's process
 * would end); one that throws here is logged and left out, the agent runs on without it.
 */
export type CompanionStarter = (p: AgentProcess) => AgentCompanion;

function startCompanions(starters: readonly CompanionStarter[], p: AgentProcess): AgentCompanion[] {
  const started: AgentCompanion[] = [];
  for (const start of starters) {
    try {
      started.push(start(p));
    } catch (e) {
      p.log.warn(`a companion of the agent did not start (${errorMessage(e)}); the agent runs without it`);
    }
  }
  return started;
}

/**
 * Runs this node's agent in the foreground until SIGTERM/SIGINT; SIGUSR1 reconciles at once.
 * Kept free of the CLI layer so the agent process (`raptiformica agent`, as started by `mesh`
 * or systemd) does not load every command's code: it lives for months, memory matters.
 * `companions` start once this process holds the agent's lock and stop with the agent.
 */
export async function runAgent(o: { cacheDir?: string; verbose: boolean; version: string; companions?: readonly CompanionStarter[] }): Promise<void> {
  let root: string;
  try {
    root = resolveCacheDir(o.cacheDir);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    process.stderr.write(`raptiformica: ${e.message}\n`);
    process.exitCode = e.exitCode;
    return;
  }
  process.env[CACHE_DIR_ENV] = root;
  const paths = cachePaths(root);
  const node = nodePaths(paths.node);
  // Timestamped lines unless journald keeps the log (it stamps them itself): the keeper
  // appends the agent's output to node/log/agent.log, where times are what one reads first.
  const log = createLogger(o.verbose, undefined, process.env["JOURNAL_STREAM"] === undefined);
  const lock = acquireAgentLock(node);
  if (!lock.ok) {
    log.info(`An agent already runs for this node (pid ${lock.pid}).`);
    return;
  }
  const installDir = findInstallDir();
  const local = new LocalConfig(paths, installDir, log, false);
  // RAPTIFORMICA_LINK_REPORTS=0 in the agent's environment: no link report (e.g. to measure what it costs).
  const linkReports = process.env["RAPTIFORMICA_LINK_REPORTS"] !== "0";
  const agent = new Agent({ cache: paths, node, installDir, log, local, version: o.version, build: buildId(process.argv[1]), linkReports });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void agent.stop();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGUSR1", () => agent.poke());
  log.info(`agent started (pid ${process.pid})`);
  const companions = startCompanions(o.companions ?? [], { cache: paths, node, installDir, log, local });
  try {
    await agent.run();
  } finally {
    await Promise.all(companions.map(async (c) => c.stop())).catch((e: unknown) => log.debug(`stopping the agent's companions: ${errorMessage(e)}`));
    lock.release();
  }
}
