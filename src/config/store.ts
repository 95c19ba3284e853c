import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";
import writeFileAtomic from "write-file-atomic";
import { UserError } from "../util/errors.ts";
import { err, ok, type Result } from "../util/result.ts";
import { KEY_ROOT, keyProblem, sortMapping, type FlatMapping } from "./flatten.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/** Sections a complete config must have (the original's validate_config_mapping). */
const REQUIRED_SECTIONS = ["server", "compute", "platform"] as const;
const SECTION_PREFIXES = REQUIRED_SECTIONS.map((section) => `${KEY_ROOT}/${section}/`);

/**
 * Why `mapping` must not be stored, or undefined when it is a complete, valid config. One pass
 * over the keys: it runs on every read of the KV, every store and every mirror, and a mapping
 * holds every member's neighbour entries (7 000 keys at 1 000 members).
 */
export function mappingProblem(mapping: unknown): string | undefined {
  if (typeof mapping !== "object" || mapping === null || Array.isArray(mapping)) return "it is not a JSON object";
  const m = mapping as Record<string, unknown>;
  const missing = new Set(SECTION_PREFIXES);
  let any = false;
  for (const key of Object.keys(m)) {
    any = true;
    const problem = keyProblem(key);
    if (problem) return `key ${JSON.stringify(key)} is invalid: ${problem}`;
    if (typeof m[key] !== "string") return `the value of ${key} is not a string`;
    if (missing.size > 0) for (const prefix of missing) if (key.startsWith(prefix)) missing.delete(prefix);
  }
  if (!any) return "it is empty";
  for (const prefix of SECTION_PREFIXES) if (missing.has(prefix)) return `it has no ${prefix} keys`;
  return undefined;
}

/**
 * Whether deleting `key` can make a valid mapping invalid (see mappingProblem): only the
 * deletion of a key in a required section can (the last one of it goes, or the last key of
 * all). Adding a key that passes keyProblem, with a string value, never can.
 */
export function deletionMayInvalidate(key: string): boolean {
  return SECTION_PREFIXES.some((prefix) => key.startsWith(prefix));
}

export interface StoreError {
  readonly path: string;
  readonly message: string;
}

export function storeErrorToUserError(e: StoreError): UserError {
  return new UserError(
    `The mutable config ${e.path} ${e.message}. raptiformica will not overwrite it. Repair it by hand, or move it ` +
      `away (mv ${e.path} ${e.path}.broken) to start again from the module defaults; the secrets and neighbours ` +
      `recorded in it would then be lost on this machine.`,
  );
}

/**
 * The local mutable config (`<cache>/mutable_config.json`): the flat mapping cache of the
 * shared config. Every read-modify-write happens under an exclusive lock, writes are atomic
 * (temp file, fsync, rename) and 0600 because the mapping holds cluster secrets. A mapping that
 * is empty or invalid is never written, and a corrupt file is never replaced.
 */
export class MutableConfigStore {
  constructor(readonly path: string) {}

  /** The stored mapping, `undefined` when there is none yet, or why the file is unusable. */
  read(): Result<FlatMapping | undefined, StoreError> {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return ok(undefined);
      return err({ path: this.path, message: `cannot be read (${(e as Error).message})` });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return err({ path: this.path, message: `is not valid JSON (${(e as Error).message})` });
    }
    const problem = mappingProblem(parsed);
    if (problem) return err({ path: this.path, message: `is not a valid config mapping: ${problem}` });
    return ok(parsed as FlatMapping);
  }

  /**
   * Read-modify-write under the lock. `change` gets the current mapping (or `seed()` when no
   * file exists yet) and returns the new one; returning the same object untouched skips the write.
   */
  async update(seed: () => FlatMapping, change: (current: FlatMapping) => FlatMapping): Promise<FlatMapping> {
    makePrivateDir(dirname(this.path));
    const release = await lockfile.lock(this.path, {
      realpath: false,
      lockfilePath: `${this.path}.lock`,
      stale: 15_000,
      // Many processes may queue here (hooks firing on every member at once); wait, don't fail.
      retries: { retries: 400, factor: 1.3, minTimeout: 5, maxTimeout: 100, randomize: true },
    });
    try {
      const current = this.read();
      if (!current.ok) throw storeErrorToUserError(current.error);
      const before = current.value ?? seed();
      const after = change({ ...before });
      const problem = mappingProblem(after);
      if (problem) {
        throw new UserError(
          `Refusing to write the mutable config ${this.path}: after this change ${problem}. Nothing was written.`,
        );
      }
      if (current.value !== undefined && sameMapping(current.value, after)) return after;
      await writeFileAtomic(this.path, `${JSON.stringify(sortMapping(after), null, 4)}\n`, { mode: 0o600, fsync: true });
      return after;
    } finally {
      await release();
    }
  }
}

function sameMapping(a: FlatMapping, b: FlatMapping): boolean {
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  return ak.every((k) => b[k] === a[k]);
}
