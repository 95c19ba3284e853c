import { KEY_ROOT, type FlatMapping } from "./flatten.ts";

/**
 * Sections of the shared config whose values are code: they run with `sh -c` (hook commands and
 * predicates, compute commands and `available` predicates, provisioner bootstraps) or decide
 * what runs and where files go (provisioner sources, the remote launcher path).
 *
 * The trust model (README, "Trust model"): whoever writes the cluster KV is root on every
 * member, but the operator's machine trusts members for data only. So keys under these
 * prefixes are never taken from a member: on the operator they always come from its own
 * modules and config.
 */
export const CODE_PREFIXES: readonly string[] = ["server/", "compute/", "platform/", "remote/"].map((s) => `${KEY_ROOT}/${s}`);

/** True when `key` (a full `raptiformica/...` key) holds code or decides where code goes. */
export function isCodeKey(key: string): boolean {
  return CODE_PREFIXES.some((p) => key.startsWith(p));
}

export interface Learned {
  /** The mapping to store here: the member's data, this machine's own code keys. */
  readonly mapping: FlatMapping;
  /** Code keys whose value (or presence) on the member differs from ours: not taken. */
  readonly refused: readonly string[];
}

/**
 * What an operator machine keeps of a mapping a member reported: every data key as the member
 * has it (neighbours, cluster settings, secrets a later `slave` must push, free-form keys), and
 * for code keys ({@link isCodeKey}) this machine's own values, whatever the member said.
 *
 * `own` and `reported` are flat mappings (`raptiformica/...` → string); neither is modified.
 * Pure; throws nothing. `refused` lists, sorted, the code keys the member had differently.
 */
export function learnFromMember(own: FlatMapping, reported: FlatMapping): Learned {
  const mapping: FlatMapping = {};
  const refused = new Set<string>();
  for (const [k, v] of Object.entries(reported)) {
    if (isCodeKey(k)) {
      if (own[k] !== v) refused.add(k);
      continue;
    }
    mapping[k] = v;
  }
  for (const [k, v] of Object.entries(own)) {
    if (!isCodeKey(k)) continue;
    mapping[k] = v;
    if (reported[k] !== v) refused.add(k);
  }
  return { mapping, refused: [...refused].sort() };
}
