import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const DEFAULT_CACHE_DIR = ".raptiformica.d";
export const CACHE_DIR_ENV = "RAPTIFORMICA_CACHE_DIR";

/** Every path raptiformica keeps state in, derived from one cache dir (original §2.4). */
export interface CachePaths {
  readonly root: string;
  readonly mutableConfig: string;
  /** Changes made on a member while its cluster was unreachable, replayed by the agent. */
  readonly pendingConfig: string;
  readonly lastAdvertised: string;
  readonly modules: string;
  readonly machines: string;
  readonly artifacts: string;
  readonly knownHosts: string;
  /** State of this machine as a cluster member (identity, certificates, data dirs). */
  readonly node: string;
}

/**
 * `--cache-dir` wins over `RAPTIFORMICA_CACHE_DIR`, which wins over `~/.raptiformica.d`.
 * Relative values are relative to $HOME, as in the original; absolute ones are kept.
 */
export function resolveCacheDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const chosen = flag ?? env[CACHE_DIR_ENV] ?? DEFAULT_CACHE_DIR;
  return isAbsolute(chosen) ? resolve(chosen) : resolve(home, chosen);
}

export function cachePaths(root: string): CachePaths {
  return {
    root,
    mutableConfig: join(root, "mutable_config.json"),
    pendingConfig: join(root, "pending_config.jsonl"),
    lastAdvertised: join(root, "last_advertised"),
    modules: join(root, "modules"),
    machines: join(root, "var", "machines"),
    artifacts: join(root, "artifacts"),
    knownHosts: join(root, "known_hosts"),
    node: join(root, "node"),
  };
}

/**
 * The install dir holds `dist/`, `bin/` and the built-in `modules/`: it is what gets pushed to
 * members, and the cwd of hook commands. Found by walking up from this file, so it works both
 * from the bundle (`dist/raptiformica.mjs`) and from the sources under tsx.
 */
export function findInstallDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env["RAPTIFORMICA_HOME"];
  if (override) return resolve(override);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "modules")) && existsSync(join(dir, "bin", "raptiformica"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`cannot find the raptiformica install dir (a folder with modules/ and bin/) above ${fileURLToPath(import.meta.url)}`);
}
