import { lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";
import { UserError } from "../util/errors.ts";
import { KEY_ROOT } from "./flatten.ts";
import { MANAGED_MARKER, ownedBase, type CachePaths } from "./paths.ts";

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
 * Why `root` is raptiformica's (a reason to show), or undefined when nothing shows it. Besides
 * the marker, state only raptiformica writes counts, for caches made before the marker: a
 * `mutable_config.json` that parses as a mapping with `raptiformica/` keys, or a member's
 * identity `node/yggdrasil/private.key`. Entry names alone never do (`ssh/`, `modules`, `var/`
 * are common names in other folders, e.g. /etc).
 */
export function ownershipEvidence(root: string): string | undefined {
  if (kindOf(join(root, MANAGED_MARKER)) === "file") return `it carries ${MANAGED_MARKER}`;
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
  return undefined;
}

/**
 * Marks the cache dir as raptiformica's (MANAGED_MARKER) where that is true: when it does not
 * exist yet (it is created, 0700), when it is empty, or when it holds raptiformica state from
 * before the marker (ownershipEvidence). A non-empty dir without such state stays unmarked:
 * commands still write their state there, but `clean`/`destroy` refuse to delete in it. Called
 * once per command, where the CLI builds its context. Failures (a read-only command run by a
 * user who cannot write there) are ignored: the command itself says what it cannot do.
 */
export function claimCacheDir(paths: CachePaths): void {
  try {
    if (kindOf(paths.marker) === "file") return;
    const kind = kindOf(paths.root);
    if (kind === "missing") mkdirSync(paths.root, { recursive: true, mode: 0o700 });
    else if (kind !== "dir") return;
    if (readdirSync(paths.root).length > 0 && ownershipEvidence(paths.root) === undefined) return;
    writeFileSync(paths.marker, MARKER_TEXT, { mode: 0o600 });
  } catch {
    /* see above */
  }
}

/**
 * Throws a UserError naming the dir and why, before anything is deleted, unless `root` is
 * raptiformica's (ownershipEvidence). A missing dir passes: there is nothing to delete.
 * `command` names what was refused (`clean`, `destroy`).
 */
export function requireOwnedCacheDir(root: string, command: string): void {
  const kind = kindOf(root);
  if (kind === "missing") return;
  if (kind !== "dir") throw new UserError(`Refusing to ${command} ${root}: it is not a directory. Nothing was deleted.`);
  if (ownershipEvidence(root) !== undefined) return;
  throw new UserError(
    `Refusing to ${command} ${root}: it is not a raptiformica cache dir — it carries no ${MANAGED_MARKER} and holds no raptiformica state ` +
      `(a mutable_config.json with ${KEY_ROOT}/ keys, or node/yggdrasil/private.key), so entries there named like raptiformica's ` +
      `(ssh/, modules, var/, node/, known_hosts …) may well be someone else's. Nothing was deleted. Check the cache dir (-c/--cache-dir, RAPTIFORMICA_CACHE_DIR); ` +
      `if this really is raptiformica's, create ${join(root, MANAGED_MARKER)} and run this again.`,
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
  if (kindOf(root) !== "dir") return { foreign: [], wrongType: [] };
  const foreign: string[] = [];
  const wrongType: string[] = [];
  const notOurs = new Set<string>();
  for (const entry of readdirSync(root)) {
    const owned = ownedBase(entry);
    if (owned === undefined) {
      foreign.push(entry);
      continue;
    }
    if (entry === MANAGED_MARKER || (opts.only && !opts.only.includes(owned.base))) continue;
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
  const left = readdirSync(root).filter((e) => e !== MANAGED_MARKER);
  const stillOurs = left.some((e) => ownedBase(e) !== undefined && !notOurs.has(e));
  if (!stillOurs) {
    const marker = join(root, MANAGED_MARKER);
    if (kindOf(marker) === "file") rmSync(marker);
    if (left.length === 0) {
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
