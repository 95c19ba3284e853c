import type { CachePaths } from "../config/paths.ts";
import type { LocalConfig } from "../config/local.ts";
import type { AvailabilityProbe } from "../config/types.ts";
import type { NodePaths } from "../node/paths.ts";
import type { Logger } from "../util/log.ts";

/**
 * Everything an operation needs from the machine it runs on: where the cache and this node's
 * state live, the install dir, the log, the local config and the type-availability probe. The
 * CLI builds one per command from its global flags (`contextFrom` in cli/context.ts); the
 * operations only read it, so they never depend on the CLI.
 */
export interface Context {
  readonly paths: CachePaths;
  readonly node: NodePaths;
  readonly installDir: string;
  readonly log: Logger;
  readonly config: LocalConfig;
  readonly probe: AvailabilityProbe;
}
