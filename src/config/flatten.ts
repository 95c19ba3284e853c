import { err, ok, type Result } from "../util/result.ts";

/** The shared-KV form of the config: `raptiformica/<path>` → string value. */
export type FlatMapping = Record<string, string>;

export const KEY_ROOT = "raptiformica";

export type Leaf = string | number | boolean;
export interface Tree {
  [key: string]: Leaf | Tree;
}

/** Nested module JSON → flat mapping; leaves become strings, paths are joined with `/`. */
export function flatten(tree: Tree, prefix: string = KEY_ROOT): FlatMapping {
  const out: FlatMapping = {};
  const walk = (node: Leaf | Tree, path: string): void => {
    if (typeof node === "object") {
      for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
    } else {
      out[path] = String(node);
    }
  };
  walk(tree, prefix);
  return out;
}

/** Flat mapping → nested tree below `KEY_ROOT`. A key that is both a value and a folder is an error. */
export function unflatten(mapping: FlatMapping): Result<Tree, string> {
  const root: Tree = {};
  for (const key of Object.keys(mapping).sort()) {
    const parts = key.split("/");
    if (parts[0] !== KEY_ROOT) return err(`key ${key} is outside ${KEY_ROOT}/`);
    let node: Tree = root;
    for (let i = 1; i < parts.length - 1; i++) {
      const part = parts[i] as string;
      const next = node[part];
      if (next === undefined) {
        const child: Tree = {};
        node[part] = child;
        node = child;
      } else if (typeof next === "object") {
        node = next;
      } else {
        return err(`key ${parts.slice(0, i + 1).join("/")} holds a value and also has keys below it (${key})`);
      }
    }
    const last = parts[parts.length - 1] as string;
    if (typeof node[last] === "object") return err(`key ${key} holds a value and also has keys below it`);
    node[last] = mapping[key] as string;
  }
  return ok(root);
}

/** Keys equal to `prefix` or below it (`prefix/...`). */
export function keysUnder(mapping: FlatMapping, prefix: string): string[] {
  const p = prefix.replace(/\/+$/, "");
  return Object.keys(mapping)
    .filter((k) => k === p || k.startsWith(`${p}/`))
    .sort();
}

/** Accepts `server/headless/...` as shorthand for `raptiformica/server/headless/...`. */
export function normalizeKey(key: string): string {
  const trimmed = key.trim().replace(/^\/+|\/+$/g, "");
  if (trimmed === KEY_ROOT || trimmed.startsWith(`${KEY_ROOT}/`)) return trimmed;
  return `${KEY_ROOT}/${trimmed}`;
}

/** Why `key` cannot be used as a config key, or undefined when it can. */
export function keyProblem(key: string): string | undefined {
  if (!key.startsWith(`${KEY_ROOT}/`)) return `it must start with ${KEY_ROOT}/`;
  // An empty segment: "//" inside, or a trailing "/" (the start is KEY_ROOT/). No split: this
  // runs for every key of every read of the config (7 000 keys at 1 000 members).
  if (key.includes("//") || key.endsWith("/")) return "it has an empty path segment (//)";
  if (/\s/.test(key)) return "it contains white space";
  return undefined;
}

/** A key found in the cluster KV that cannot be part of the shared config, and why (see keyProblem). */
export interface UnusableKey {
  readonly key: string;
  readonly problem: string;
}

/**
 * Splits a mapping as read from the cluster KV into the keys usable as config and the others.
 * The KV is written by more than raptiformica (apps on members, a hand-run etcdctl): one key
 * with a space or a `//` in it must cost only that key, not the whole config. Pure.
 */
export function splitUsable(raw: FlatMapping): { mapping: FlatMapping; unusable: UnusableKey[] } {
  const mapping: FlatMapping = {};
  const unusable: UnusableKey[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const problem = keyProblem(key);
    if (problem) unusable.push({ key, problem });
    else mapping[key] = value;
  }
  unusable.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { mapping, unusable };
}

/** One sentence for a warning or `members`: the key, that it is skipped and why, and how to remove it. */
export function describeUnusableKey(u: UnusableKey): string {
  const quoted = `'${u.key.replace(/'/g, `'"'"'`)}'`;
  return (
    `Config key ${JSON.stringify(u.key)} in the cluster KV is skipped: ${u.problem}. Every member ignores it; ` +
    `remove it with \`raptiformica config delete ${quoted}\` and fix whatever wrote it.`
  );
}

/** Sorted copy, for stable files and output. */
export function sortMapping(mapping: FlatMapping): FlatMapping {
  const out: FlatMapping = {};
  for (const k of Object.keys(mapping).sort()) out[k] = mapping[k] as string;
  return out;
}
