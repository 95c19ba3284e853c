import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";

export interface HookHandler {
  readonly name: string;
  /** Shell predicate; the command runs only if it exits 0. Missing means always. */
  readonly predicate: string;
  /** Shell command. Missing means nothing to do (the original's /bin/true). */
  readonly command: string;
}

/** Handlers of `hook` for `platformType`, ordered by handler name so runs are reproducible. */
export function hookHandlers(mapping: FlatMapping, platformType: string, hook: string): HookHandler[] {
  const prefix = `${KEY_ROOT}/platform/${platformType}/hooks/${hook}/`;
  const byName = new Map<string, { predicate?: string; command?: string }>();
  for (const [key, value] of Object.entries(mapping)) {
    if (!key.startsWith(prefix)) continue;
    const [handler, field, ...rest] = key.slice(prefix.length).split("/");
    if (!handler || rest.length > 0 || (field !== "predicate" && field !== "command")) continue;
    const entry = byName.get(handler) ?? {};
    entry[field] = value;
    byName.set(handler, entry);
  }
  return [...byName.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, e]) => ({ name, predicate: e.predicate?.trim() || "true", command: e.command?.trim() || "true" }));
}

/** Names of every hook that has at least one handler, for `hook --list`. */
export function hookNames(mapping: FlatMapping, platformType: string): string[] {
  const prefix = `${KEY_ROOT}/platform/${platformType}/hooks/`;
  const names = new Set<string>();
  for (const key of Object.keys(mapping)) {
    if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split("/")[0] as string);
  }
  return [...names].sort();
}
