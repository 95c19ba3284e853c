import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import { LABEL_NAME, type Placement } from "./jobs.ts";
import type { NodeRecord } from "./registry.ts";

/*
 * A member's labels, what `job run --on LABEL=VALUE` places by: the built-in ones its node
 * record carries (`arch`, `distribution`, node/labels.ts) and its `role` (leader, voter,
 * learner, proxy), plus those the shared config gives it by name:
 *
 *   raptiformica/labels/<member name>/<label>  →  value
 *
 * A built-in label wins over a config key of the same name (a member's arch is what it is).
 */

/** The config folder of members' labels. */
export const LABELS_PREFIX = `${KEY_ROOT}/labels/`;

/**
 * The labels of the member whose live record is `record`, with the config's `mapping`.
 * Pure; throws nothing.
 */
export function memberLabels(record: NodeRecord, mapping: FlatMapping): Record<string, string> {
  const out: Record<string, string> = {};
  const own = `${LABELS_PREFIX}${record.name}/`;
  for (const [k, v] of Object.entries(mapping)) {
    if (!k.startsWith(own)) continue;
    const label = k.slice(own.length);
    if (LABEL_NAME.test(label)) out[label] = v;
  }
  for (const [k, v] of Object.entries(record.labels ?? {})) out[k] = v;
  out["role"] = record.role;
  return out;
}

/**
 * The members a job placed by `placement` runs on, from the live node `records` and the config
 * `mapping`: every one for `all`, those whose label matches for `LABEL=VALUE`; sorted public
 * keys. Undefined for `one` (any member may run it). Pure; throws nothing.
 */
export function placementMembers(placement: Placement, records: readonly NodeRecord[], mapping: FlatMapping): string[] | undefined {
  if (placement.kind === "one") return undefined;
  const chosen = placement.kind === "all" ? records : records.filter((r) => memberLabels(r, mapping)[placement.label] === placement.value);
  return [...new Set(chosen.map((r) => r.publicKey))].sort();
}
