import { UserError } from "../util/errors.ts";
import { runShell } from "../util/exec.ts";
import { KEY_ROOT, type FlatMapping } from "./flatten.ts";

export type TypeKind = "server" | "compute" | "platform";

/** Types of a kind = the names directly below `raptiformica/<kind>/`, sorted. */
export function listTypes(mapping: FlatMapping, kind: TypeKind): string[] {
  const prefix = `${KEY_ROOT}/${kind}/`;
  const names = new Set<string>();
  for (const key of Object.keys(mapping)) {
    if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split("/")[0] as string);
  }
  return [...names].sort();
}

/** All `available` predicates below a type (any depth), as in the original. */
export function availabilityPredicates(mapping: FlatMapping, kind: TypeKind, type: string): string[] {
  const prefix = `${KEY_ROOT}/${kind}/${type}/`;
  return Object.keys(mapping)
    .filter((k) => k.startsWith(prefix) && (k.endsWith("/available") || k === `${prefix}available`))
    .sort()
    .map((k) => mapping[k] as string);
}

export interface AvailabilityProbe {
  /** Whether the predicate exits 0; memoised per predicate string for the life of the probe. */
  check(predicate: string): Promise<boolean>;
}

export const PREDICATE_TIMEOUT_MS = 15_000;

export function createAvailabilityProbe(cwd: string, env?: NodeJS.ProcessEnv): AvailabilityProbe {
  const memo = new Map<string, Promise<boolean>>();
  return {
    check(predicate) {
      if (predicate.trim() === "") return Promise.resolve(true);
      let result = memo.get(predicate);
      if (!result) {
        result = runShell(predicate, { cwd, env, timeoutMs: PREDICATE_TIMEOUT_MS }).then((r) => r.exitCode === 0 && !r.timedOut);
        memo.set(predicate, result);
      }
      return result;
    },
  };
}

export async function isAvailable(mapping: FlatMapping, kind: TypeKind, type: string, probe: AvailabilityProbe): Promise<boolean> {
  const checks = await Promise.all(availabilityPredicates(mapping, kind, type).map((p) => probe.check(p)));
  return checks.every(Boolean);
}

export interface TypeStatus {
  readonly name: string;
  readonly available: boolean;
}

export async function typeStatuses(mapping: FlatMapping, kind: TypeKind, probe: AvailabilityProbe): Promise<TypeStatus[]> {
  return Promise.all(listTypes(mapping, kind).map(async (name) => ({ name, available: await isAvailable(mapping, kind, name, probe) })));
}

/**
 * The type a command should use: the requested one if it exists and is available here,
 * otherwise the first available in alphabetical order (the original's default rule).
 */
export async function resolveType(
  mapping: FlatMapping,
  kind: Exclude<TypeKind, "platform">,
  requested: string | undefined,
  probe: AvailabilityProbe,
): Promise<string> {
  const statuses = await typeStatuses(mapping, kind, probe);
  const available = statuses.filter((s) => s.available).map((s) => s.name);
  const flag = `--${kind}-type`;
  if (requested !== undefined) {
    const found = statuses.find((s) => s.name === requested);
    if (!found) {
      const known = statuses.map((s) => s.name).join(", ") || "none";
      throw new UserError(
        `Unknown ${kind} type "${requested}" given with ${flag}. Known ${kind} types: ${known}. ` +
          `Install a module that provides it with \`raptiformica install <module>\`, or pick one of those.`,
      );
    }
    if (!found.available) {
      throw new UserError(
        `The ${kind} type "${requested}" is not available on this machine: its \`available\` predicate ` +
          `(config keys ${KEY_ROOT}/${kind}/${requested}/**/available) did not exit 0. Available here: ${available.join(", ") || "none"}.`,
      );
    }
    return requested;
  }
  const first = available[0];
  if (first === undefined) {
    throw new UserError(
      `No ${kind} type is available on this machine (known: ${statuses.map((s) => s.name).join(", ") || "none"}; ` +
        `each one's \`available\` predicate failed). See \`raptiformica config types\` for details.`,
    );
  }
  return first;
}
