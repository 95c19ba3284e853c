import { delimiter, join } from "node:path";
import { CACHE_DIR_ENV } from "./paths.ts";

/** Where a child runs from: this install (`RAPTIFORMICA_HOME`) and this cache dir. */
export interface ChildPlace {
  readonly installDir: string;
  readonly cacheDir: string;
}

/**
 * The environment of every shell command raptiformica runs from the config (hooks, compute and
 * package commands, availability predicates): ours, plus RAPTIFORMICA_HOME (the install dir),
 * RAPTIFORMICA_CACHE_DIR, and the install's bin/ first on PATH, so a command that calls
 * `raptiformica …` gets this very install and cache dir. `extra` is laid over the result.
 */
export function childEnv(place: ChildPlace, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    RAPTIFORMICA_HOME: place.installDir,
    [CACHE_DIR_ENV]: place.cacheDir,
    PATH: [join(place.installDir, "bin"), process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"].join(delimiter),
    ...extra,
  };
}
