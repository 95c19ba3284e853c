import { existsSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../util/errors.ts";

export const DEFAULT_CACHE_DIR = ".raptiformica.d";
export const CACHE_DIR_ENV = "RAPTIFORMICA_CACHE_DIR";

/** Every path raptiformica keeps state in, derived from one cache dir (original §2.4). */
export interface CachePaths {
  readonly root: string;
  /** The file that marks the dir as raptiformica's cache dir (CACHE_MARKER): only then may clean/destroy delete in it. */
  readonly marker: string;
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
  /** The operator's ssh_config, ControlMaster sockets and (if it made one) SSH key. */
  readonly ssh: string;
}

/**
 * The file that marks a directory as one raptiformica pushes into (`slave`: the install dir on
 * a member, e.g. /usr/etc/raptiformica). Earlier builds also wrote it into the cache dir, so a
 * cache dir carrying it is recognised only with cache state and no install beside it (see
 * claimCacheDir); on its own it never lets `clean`/`destroy` delete anything.
 */
export const MANAGED_MARKER = ".raptiformica-managed";

/**
 * The file that marks a directory as raptiformica's cache dir: written when raptiformica
 * creates the dir or first uses it (see claimCacheDir). `clean` and `destroy` delete only in a
 * dir that carries it. A different name from MANAGED_MARKER, so an install dir is never taken
 * for a cache dir.
 */
export const CACHE_MARKER = ".raptiformica-cache";

/**
 * The entries raptiformica itself creates at the top of a cache dir, and what each must be:
 * `clean` and `destroy` delete these and nothing else, and only when they are of that type (a
 * `modules` that is a file, a `known_hosts` that is a directory, a symlink in place of either
 * is not raptiformica's and stays). So a cache dir pointed at a folder that holds other things
 * (by a typo, or on purpose) loses only raptiformica's state. Every path of CachePaths lives
 * under one of them (a unit test holds that). `files` also own their siblings named
 * `<name>.<suffix>`: lock files (a `.lock` directory), atomic-write temp files, the journal
 * being replayed, `known_hosts.old` from `ssh-keygen -R`.
 */
export const OWNED_ENTRIES = {
  files: ["mutable_config.json", "pending_config.jsonl", "last_advertised", "known_hosts"],
  dirs: ["modules", "var", "artifacts", "node", "ssh"],
} as const;

/** Whether a top-level entry of the cache dir (a bare name) is one raptiformica creates. */
export function isOwnedEntry(name: string): boolean {
  return ownedBase(name) !== undefined;
}

/**
 * The OWNED_ENTRIES name a top-level entry belongs to (`known_hosts` for `known_hosts.lock`),
 * with the type it must have to be raptiformica's; undefined for anything else. The marker
 * (CACHE_MARKER) belongs to itself.
 */
export function ownedBase(name: string): { base: string; kind: "file" | "dir" | "lock" } | undefined {
  if (name === CACHE_MARKER) return { base: name, kind: "file" };
  if ((OWNED_ENTRIES.dirs as readonly string[]).includes(name)) return { base: name, kind: "dir" };
  for (const f of OWNED_ENTRIES.files) {
    if (name === f) return { base: f, kind: "file" };
    if (name.startsWith(`${f}.`)) return { base: f, kind: name === `${f}.lock` ? "lock" : "file" };
  }
  return undefined;
}

/** Where the cache dir setting came from, as the user would name it in an error. */
export type CacheDirSource = "flag" | "env" | "default";

function describeSource(source: CacheDirSource, value: string): string {
  if (source === "flag") return `-c/--cache-dir ${JSON.stringify(value)}`;
  if (source === "env") return `${CACHE_DIR_ENV}=${JSON.stringify(value)}`;
  return `the default cache dir ${JSON.stringify(value)}`;
}

/** The path with symlinks resolved where it exists (a link to $HOME is $HOME). */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * `--cache-dir` wins over `RAPTIFORMICA_CACHE_DIR`, which wins over `~/.raptiformica.d`; an
 * empty `RAPTIFORMICA_CACHE_DIR` counts as unset (`VAR= cmd` and `${VAR:-}` in scripts).
 * Relative values are relative to $HOME, as in the original; absolute ones are kept. A leading
 * `~`, alone or followed by one or more `/`, means $HOME, as the shell would have read it had it not been quoted (`-c '~/x'`,
 * `RAPTIFORMICA_CACHE_DIR=~/x` in a unit file); `~user` is not expanded but refused.
 *
 * Throws UserError, naming the value and where it came from, when the dir would be $HOME, `/`
 * or a folder above $HOME (symlinks followed), when `--cache-dir` is empty, when it starts with
 * `~user`, or when it depends on $HOME and `home` is not an absolute path (an empty or relative
 * HOME would put the state below whatever the current directory happens to be): every command
 * writes its state there and `clean`/`destroy` delete that state, so such a setting is almost
 * certainly a mistake, and an expensive one.
 */
export function resolveCacheDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const fromEnv = env[CACHE_DIR_ENV];
  const [value, source]: [string, CacheDirSource] =
    flag !== undefined ? [flag, "flag"] : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, "env"] : [DEFAULT_CACHE_DIR, "default"];
  const given = describeSource(source, value);
  const fix = source === "env" ? `Fix the ${CACHE_DIR_ENV} environment variable` : source === "flag" ? "Fix the -c/--cache-dir flag" : `Give one with -c/--cache-dir or ${CACHE_DIR_ENV}`;
  if (value.trim() === "") {
    throw new UserError(`The cache dir given with ${given} is empty (it would be $HOME itself). Give a directory of raptiformica's own, e.g. -c ${DEFAULT_CACHE_DIR} (relative to $HOME) or an absolute path; nothing was changed.`);
  }
  if (/^~[^/]/.test(value)) {
    throw new UserError(`Refusing the cache dir ${given}: raptiformica expands a leading ~ or ~/ to $HOME but not ~user. Give the absolute path instead. ${fix}; nothing was changed.`);
  }
  // `~//x` is $HOME/x, as the shell reads it (not /x).
  const tilde = /^~\/*/.exec(value);
  const fromHome = tilde ? value.slice(tilde[0].length) : isAbsolute(value) ? undefined : value;
  if (fromHome !== undefined && !isAbsolute(home)) {
    throw new UserError(
      `Cannot use ${given}: it is relative to $HOME, and HOME is ${home === "" ? "empty" : `${JSON.stringify(home)}, not an absolute path`}, so the state would land below the current directory. ` +
        `Set HOME to your home directory, or give an absolute cache dir with -c/--cache-dir or ${CACHE_DIR_ENV}; nothing was changed.`,
    );
  }
  const dir = fromHome === undefined ? resolve(value) : resolve(home, fromHome);
  const target = real(dir);
  const homeDir = isAbsolute(home) ? real(resolve(home)) : undefined;
  const what =
    target === sep
      ? "the root directory /"
      : homeDir === undefined
        ? undefined
        : target === homeDir
          ? `your home directory ${homeDir}`
          : homeDir.startsWith(`${target}${sep}`)
            ? `${target}, a folder above your home directory ${homeDir}`
            : undefined;
  if (what) {
    throw new UserError(
      `Refusing the cache dir ${given}: it resolves to ${what}. raptiformica writes its state into the cache dir and \`clean\`/\`destroy\` delete it, so it must be a directory of its own, ` +
        `e.g. ${join(homeDir ?? "~", DEFAULT_CACHE_DIR)} (the default). Relative values are relative to $HOME. ${fix}; nothing was changed.`,
    );
  }
  return dir;
}

export function cachePaths(root: string): CachePaths {
  return {
    root,
    marker: join(root, CACHE_MARKER),
    mutableConfig: join(root, "mutable_config.json"),
    pendingConfig: join(root, "pending_config.jsonl"),
    lastAdvertised: join(root, "last_advertised"),
    modules: join(root, "modules"),
    machines: join(root, "var", "machines"),
    artifacts: join(root, "artifacts"),
    knownHosts: join(root, "known_hosts"),
    node: join(root, "node"),
    ssh: join(root, "ssh"),
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
