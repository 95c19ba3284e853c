import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";
import { UserError } from "../util/errors.ts";
import { KEY_ROOT } from "./flatten.ts";
import { CACHE_DIR_ENV, CACHE_MARKER, DEFAULT_CACHE_DIR, MANAGED_MARKER, ownedBase, type CachePaths } from "./paths.ts";
import { makePrivateDir } from "../util/private-dir.ts";

const MARKER_TEXT = "This directory is a raptiformica cache dir: `raptiformica clean` and `destroy` delete raptiformica's entries in it.\n";

function kindOf(path: string): "file" | "dir" | "other" | "missing" {
  try {
    const st = lstatSync(path);
    return st.isFile() ? "file" : st.isDirectory() ? "dir" : "other";
  } catch {
    return "missing";
  }
}

/**
 * What the cache dir path itself is, a symlink followed: a symlink to a directory is that
 * directory (`dir`, its state lives in the target); `dangling` is a symlink to nothing.
 */
function rootKind(path: string): "dir" | "file" | "other" | "missing" | "dangling" {
  // Another command started at the same moment may create the dir between the two looks (stat
  // found nothing, lstat finds its new dir): looked at again then, a few times at most.
  for (let tries = 0; ; tries++) {
    try {
      const st = statSync(path);
      return st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
    } catch {
      if (kindOf(path) === "missing") return "missing";
      if (isSymlink(path) || tries >= 3) return "dangling";
    }
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Why `root` holds a raptiformica cache made before the marker existed (a reason to show), or
 * undefined: a `mutable_config.json` that parses as a mapping with `raptiformica/` keys, or a
 * member's identity `node/yggdrasil/private.key`. Entry names alone never do (`ssh/`,
 * `modules`, `var/` are common names in other folders, e.g. /etc). Only looked at when the dir
 * is first claimed (claimCacheDir), which then marks it: after that only the marker counts, so
 * state a command wrote never turns a foreign folder into raptiformica's.
 */
export function ownershipEvidence(root: string): string | undefined {
  const config = join(root, "mutable_config.json");
  if (kindOf(config) === "file") {
    try {
      const doc: unknown = JSON.parse(readFileSync(config, "utf8"));
      if (typeof doc === "object" && doc !== null && !Array.isArray(doc) && Object.keys(doc).some((k) => k.startsWith(`${KEY_ROOT}/`))) return "it holds raptiformica's mutable_config.json";
    } catch {
      /* not raptiformica's, or unreadable: no evidence */
    }
  }
  if (kindOf(join(root, "node", "yggdrasil", "private.key")) === "file") return "it holds a member's node/yggdrasil/private.key";
  if (kindOf(join(root, "node", "etcd", "tls", "node.crt")) === "file") return "it holds a member's node/etcd/tls/node.crt";
  return installedModuleEvidence(root);
}

/**
 * A module installed (or put) under `modules/<name>/`: a JSON file there that names
 * `raptiformica_api_version`, malformed or not (the format's own key; a user may lay a module
 * down by hand before the first command). Reads at most 20 module dirs and 4 KiB of each file.
 */
function installedModuleEvidence(root: string): string | undefined {
  const modules = join(root, "modules");
  if (kindOf(modules) !== "dir") return undefined;
  for (const name of readdirSync(modules).slice(0, 20)) {
    const dir = join(modules, name);
    if (kindOf(dir) !== "dir") continue;
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".json")).slice(0, 20)) {
      const path = join(dir, f);
      if (kindOf(path) !== "file") continue;
      let head = "";
      try {
        const fd = openSync(path, "r");
        try {
          const buf = Buffer.alloc(4096);
          head = buf.subarray(0, readSync(fd, buf, 0, 4096, 0)).toString("utf8");
        } finally {
          closeSync(fd);
        }
      } catch {
        continue;
      }
      if (head.includes("raptiformica_api_version")) return `it holds an installed module (${join("modules", name, f)})`;
    }
  }
  return undefined;
}

/**
 * Why `root` is an install dir (raptiformica's code, pushed by `slave` or this very install),
 * or undefined. `installDir` is the local install dir. A cache marked by earlier builds with
 * MANAGED_MARKER is not one: it holds cache state (mutable_config.json or node/) and neither
 * dist/ nor bin/raptiformica.
 */
function installEvidence(root: string, installDir: string | undefined): string | undefined {
  if (installDir !== undefined && realOrSelf(root) === realOrSelf(installDir)) return "it is the install dir of the raptiformica running now";
  if (kindOf(join(root, "dist", "raptiformica.mjs")) === "file") return "it holds dist/raptiformica.mjs (it is a raptiformica install dir)";
  const code = kindOf(join(root, "dist")) !== "missing" || kindOf(join(root, "bin", "raptiformica")) !== "missing";
  if (kindOf(join(root, MANAGED_MARKER)) === "file") {
    // Only the marker: a cache an earlier build made and nothing has written to yet.
    const cacheState = kindOf(join(root, "mutable_config.json")) === "file" || kindOf(join(root, "node")) === "dir" || readdirSync(root).every((e) => e === MANAGED_MARKER);
    if (code || !cacheState) return `it carries ${MANAGED_MARKER}, the mark of a directory \`slave\` installs raptiformica into`;
  }
  return undefined;
}

function refuse(root: string, why: string): never {
  throw new UserError(
    `Refusing to use ${root} as the cache dir: ${why}. raptiformica writes its state into the cache dir and \`clean\`/\`destroy\` delete there, so it keeps its cache ` +
      `only in a directory of its own (one carrying ${CACHE_MARKER}). Nothing was changed. Give a new or empty directory with -c/--cache-dir or ${CACHE_DIR_ENV}, ` +
      `or leave both unset for the default ~/${DEFAULT_CACHE_DIR}; if this really is raptiformica's cache dir, create ${join(root, CACHE_MARKER)} and run this again.`,
  );
}

/**
 * Makes sure the cache dir is raptiformica's before any command writes state into it, and marks
 * it (CACHE_MARKER). Claimed: a dir that carries the marker; a new one (created, 0700); an empty
 * one; one with a cache from before the marker (ownershipEvidence, or MANAGED_MARKER as earlier
 * builds wrote it, with cache state and no install: that old marker is then replaced). A symlink
 * to a directory is followed (the marker goes into the target).
 *
 * Throws UserError naming the path, before anything is written, for anything else: a regular
 * file or a dangling symlink, a path below a file, an install dir (installEvidence), or a
 * non-empty folder with none of the above. Failing to write the marker for lack of permission
 * is ignored (a read-only command run by a user who cannot write there); the command itself
 * then says what it cannot do. Called once per command, where the CLI builds its context.
 */
export function claimCacheDir(paths: CachePaths, installDir?: string): void {
  const root = paths.root;
  const kind = rootKind(root);
  if (kind === "dangling") {
    refuse(root, `it is a symbolic link to ${JSON.stringify(readlinkSafe(root))}, which does not exist`);
  }
  if (kind === "file" || kind === "other") refuse(root, `it is ${kind === "file" ? "a file" : "a special file"}, not a directory`);
  const writeMarker = (): void => {
    try {
      writeFileSync(paths.marker, MARKER_TEXT, { mode: 0o600 });
    } catch (e) {
      if (!isPermission(e)) throw e;
    }
  };
  if (kind === "missing") {
    try {
      makePrivateDir(root);
    } catch (e) {
      if (isPermission(e)) return;
      refuse(root, `it cannot be created (${(e as NodeJS.ErrnoException).code ?? String(e)}: a part of the path is a file or a dangling symbolic link)`);
    }
    writeMarker();
    return;
  }
  if (kindOf(paths.marker) === "file") return;
  const install = installEvidence(root, installDir);
  if (install !== undefined) refuse(root, install);
  // Another command started at the same moment may claim the dir between the check above and
  // this listing: its marker, or state it wrote once marked, is no sign of a foreign dir.
  const entries = readdirSync(root).filter((e) => e !== MANAGED_MARKER && e !== CACHE_MARKER);
  const oldMarker = kindOf(join(root, MANAGED_MARKER)) === "file";
  if (entries.length > 0 && !oldMarker && ownershipEvidence(root) === undefined) {
    if (kindOf(paths.marker) === "file") return;
    refuse(root, `it is not empty and holds no raptiformica cache (no ${CACHE_MARKER}, no mutable_config.json with ${KEY_ROOT}/ keys, no member state under node/, no module under modules/), so what is there is likely someone else's`);
  }
  writeMarker();
  if (oldMarker && kindOf(paths.marker) === "file") rmSync(join(root, MANAGED_MARKER), { force: true });
}

function isPermission(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "EACCES" || code === "EPERM" || code === "EROFS";
}

function readlinkSafe(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "?";
  }
}

/**
 * Throws a UserError naming the dir and why, before anything is deleted, unless `root` carries
 * CACHE_MARKER (a symlink to a directory is followed). A missing dir passes: there is nothing
 * to delete. `command` names what was refused (`clean`, `destroy`).
 */
export function requireOwnedCacheDir(root: string, command: string): void {
  const kind = rootKind(root);
  if (kind === "missing") return;
  if (kind === "dangling") throw new UserError(`Refusing to ${command} ${root}: it is a symbolic link to ${JSON.stringify(readlinkSafe(root))}, which does not exist. Nothing was deleted.`);
  if (kind !== "dir") throw new UserError(`Refusing to ${command} ${root}: it is not a directory. Nothing was deleted.`);
  if (kindOf(join(root, CACHE_MARKER)) === "file") return;
  throw new UserError(
    `Refusing to ${command} ${root}: it is not a raptiformica cache dir — it carries no ${CACHE_MARKER}, so entries there named like raptiformica's ` +
      `(ssh/, modules, var/, node/, known_hosts …) may well be someone else's. Nothing was deleted. Check the cache dir (-c/--cache-dir, ${CACHE_DIR_ENV}); ` +
      `if this really is raptiformica's, create ${join(root, CACHE_MARKER)} and run this again.`,
  );
}

/** What removeOwnedState left in the cache dir, by top-level name. */
export interface LeftInCache {
  /** Entries raptiformica does not create. */
  readonly foreign: readonly string[];
  /** Entries with one of raptiformica's names but not its type, each with what it is instead. */
  readonly wrongType: readonly string[];
}

/**
 * Deletes `path` except the paths in `keep` (absolute, below it): a folder that holds one of
 * them is emptied around it instead. Returns whether anything was kept.
 */
function removeExcept(path: string, keep: readonly string[]): boolean {
  if (keep.includes(path)) return true;
  const inside = keep.some((k) => k.startsWith(`${path}${sep}`));
  if (!inside || kindOf(path) !== "dir") {
    rmSync(path, { recursive: true, force: true });
    return false;
  }
  let kept = false;
  for (const entry of readdirSync(path)) kept = removeExcept(join(path, entry), keep) || kept;
  if (!kept) rmdirSync(path);
  return kept;
}

function typeMatches(kind: "file" | "dir" | "lock", actual: ReturnType<typeof kindOf>): boolean {
  return kind === "lock" ? actual === "file" || actual === "dir" : actual === kind;
}

/**
 * Removes raptiformica's own top-level entries of the cache dir (OWNED_ENTRIES; with `only`,
 * just those names and their siblings) except the paths in `keep` (absolute, kept with their
 * parents), each only when it has raptiformica's type. The marker goes once all of
 * raptiformica's state is gone (a dir that still holds kept state stays marked), the dir itself
 * only when nothing else is left: whatever else someone put there stays. The caller checks
 * ownership first (requireOwnedCacheDir).
 */
export function removeOwnedState(root: string, opts: { keep?: readonly string[]; only?: readonly string[] } = {}): LeftInCache {
  const keep = opts.keep ?? [];
  if (rootKind(root) !== "dir") return { foreign: [], wrongType: [] };
  const foreign: string[] = [];
  const wrongType: string[] = [];
  const notOurs = new Set<string>();
  for (const entry of readdirSync(root)) {
    const owned = ownedBase(entry);
    if (owned === undefined) {
      foreign.push(entry);
      continue;
    }
    if (entry === CACHE_MARKER || (opts.only && !opts.only.includes(owned.base))) continue;
    const path = join(root, entry);
    const actual = kindOf(path);
    if (!typeMatches(owned.kind, actual)) {
      const is = actual === "other" ? "a symlink or special file" : actual === "dir" ? "a directory" : "a file";
      notOurs.add(entry);
      wrongType.push(`${entry} (${is}, where raptiformica makes ${owned.kind === "dir" ? "a directory" : "a file"})`);
      continue;
    }
    removeExcept(path, keep);
  }
  // The marker goes with the last of raptiformica's state; the dir only when nothing else is in it.
  const left = readdirSync(root).filter((e) => e !== CACHE_MARKER);
  const stillOurs = left.some((e) => ownedBase(e) !== undefined && !notOurs.has(e));
  if (!stillOurs) {
    const marker = join(root, CACHE_MARKER);
    if (kindOf(marker) === "file") rmSync(marker);
    // A cache dir given as a symlink keeps its (empty) target: the link stays usable.
    if (left.length === 0 && !isSymlink(root)) {
      try {
        rmdirSync(root);
      } catch {
        // Something appeared meanwhile: the dir stays, and stays raptiformica's.
        writeFileSync(marker, MARKER_TEXT, { mode: 0o600 });
      }
    }
  }
  return { foreign, wrongType };
}
