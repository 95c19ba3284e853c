import type { Command } from "commander";
import { LocalConfig } from "../config/local.ts";
import { CACHE_DIR_ENV, cachePaths, findInstallDir, resolveCacheDir, type CachePaths } from "../config/paths.ts";
import { createAvailabilityProbe, type AvailabilityProbe } from "../config/types.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { nodePaths, type NodePaths } from "../node/paths.ts";

export interface GlobalOptions {
  verbose?: boolean;
  cacheDir?: string;
  strict?: boolean;
}

/** Everything a command needs, built once from the global flags. */
export interface Context {
  readonly paths: CachePaths;
  readonly node: NodePaths;
  readonly installDir: string;
  readonly log: Logger;
  readonly config: LocalConfig;
  readonly probe: AvailabilityProbe;
}

export function contextFrom(cmd: Command): Context {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const cacheDir = resolveCacheDir(g.cacheDir);
  // Every child (hooks, compute commands, nested raptiformica calls) inherits the cache dir.
  process.env[CACHE_DIR_ENV] = cacheDir;
  const paths = cachePaths(cacheDir);
  const installDir = findInstallDir();
  const log = createLogger(Boolean(g.verbose));
  return {
    paths,
    node: nodePaths(paths.node),
    installDir,
    log,
    config: new LocalConfig(paths, installDir, log, Boolean(g.strict)),
    probe: createAvailabilityProbe(installDir, { ...process.env, RAPTIFORMICA_HOME: installDir, RAPTIFORMICA_CACHE_DIR: cacheDir }),
  };
}
