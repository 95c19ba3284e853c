import type { Command } from "commander";
import { claimCacheDir } from "../config/cache-owner.ts";
import { childEnv } from "../config/child-env.ts";
import { LocalConfig } from "../config/local.ts";
import { CACHE_DIR_ENV, cachePaths, findInstallDir, resolveCacheDir } from "../config/paths.ts";
import { createAvailabilityProbe } from "../config/types.ts";
import { createLogger } from "../util/log.ts";
import { nodePaths } from "../node/paths.ts";
import type { Context } from "../ops/context.ts";

export interface GlobalOptions {
  verbose?: boolean;
  cacheDir?: string;
  strict?: boolean;
}

/** Everything a command needs (see ops/context.ts), built once from the global flags. */
export function contextFrom(cmd: Command): Context {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const cacheDir = resolveCacheDir(g.cacheDir);
  // Every child (hooks, compute commands, nested raptiformica calls) inherits the cache dir.
  process.env[CACHE_DIR_ENV] = cacheDir;
  const paths = cachePaths(cacheDir);
  const installDir = findInstallDir();
  // The one place the cache dir is made (or first used): a folder that is not raptiformica's is
  // refused before any state is written there; one that is gets the marker that lets
  // clean/destroy delete in it.
  claimCacheDir(paths, installDir);
  const log = createLogger(Boolean(g.verbose));
  return {
    paths,
    node: nodePaths(paths.node),
    installDir,
    log,
    config: new LocalConfig(paths, installDir, log, Boolean(g.strict)),
    probe: createAvailabilityProbe(installDir, childEnv({ installDir, cacheDir })),
  };
}
