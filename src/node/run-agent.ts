import { LocalConfig } from "../config/local.ts";
import { cachePaths, findInstallDir, resolveCacheDir, CACHE_DIR_ENV } from "../config/paths.ts";
import { UserError } from "../util/errors.ts";
import { createLogger } from "../util/log.ts";
import { Agent } from "./agent.ts";
import { acquireAgentLock } from "./agent-lock.ts";
import { nodePaths } from "./paths.ts";
import { buildId } from "./status.ts";

/**
 * Runs this node's agent in the foreground until SIGTERM/SIGINT; SIGUSR1 reconciles at once.
 * Kept free of the CLI layer so the agent process (`raptiformica agent`, as started by `mesh`
 * or systemd) does not load every command's code: it lives for months, memory matters.
 */
export async function runAgent(o: { cacheDir?: string; verbose: boolean; version: string }): Promise<void> {
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
  const log = createLogger(o.verbose);
  const lock = acquireAgentLock(node.agentPid);
  if (!lock.ok) {
    log.info(`An agent already runs for this node (pid ${lock.pid}).`);
    return;
  }
  const installDir = findInstallDir();
  const agent = new Agent({ cache: paths, node, installDir, log, local: new LocalConfig(paths, installDir, log, false), version: o.version, build: buildId(process.argv[1]) });
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
  try {
    await agent.run();
  } finally {
    lock.release();
  }
}
