import type { Context } from "./context.ts";
import type { FlatMapping } from "../config/flatten.ts";
import { learnFromMember } from "../config/trust.ts";
import { clusterIdOf, clusterLabel, otherClusterProblem } from "../consensus/cluster-id.ts";
import { KEYS } from "../consensus/settings.ts";
import { UserError } from "../util/errors.ts";

function caOf(m: FlatMapping): FlatMapping {
  const out: FlatMapping = {};
  for (const k of [KEYS.caCert, KEYS.caKey]) if (m[k] !== undefined) out[k] = m[k];
  return out;
}

/**
 * The pure rule behind {@link storeLearned}: `reported`'s data with `own`'s code keys
 * (config/trust.ts), `own`'s cluster CA kept when `reported` names none (a member whose KV lost
 * it does not make this machine forget its cluster; `keptCa` says so).
 * @throws UserError naming `who` when `reported` belongs to another cluster.
 */
export function mergeLearned(own: FlatMapping, reported: FlatMapping, who: string): { mapping: FlatMapping; refused: readonly string[]; keptCa: boolean } {
  const problem = otherClusterProblem(own, reported, who);
  if (problem) throw new UserError(problem);
  const learned = learnFromMember(own, reported);
  if (clusterIdOf(own) && !clusterIdOf(reported)) return { mapping: { ...learned.mapping, ...caOf(own) }, refused: learned.refused, keptCa: true };
  return { mapping: learned.mapping, refused: learned.refused, keptCa: false };
}

/**
 * Stores on this (operator) machine what member `who` reported of the shared config, by the
 * trust model: its data (neighbours, cluster settings, secrets) is taken, its code keys
 * (hooks, predicates, compute and provisioner commands, the remote launcher) are not — this
 * machine keeps its own, and says when the member's differ. A member of another cluster is
 * refused (UserError, nothing changed): an operator never switches clusters silently. Returns
 * the stored mapping. Runs under the mutable config's lock.
 * @throws UserError when `reported` is another cluster's, or the mutable config cannot be written; nothing is changed then.
 */
export async function storeLearned(ctx: Context, reported: FlatMapping, who: string): Promise<FlatMapping> {
  let refused: readonly string[] = [];
  let keptCa = false;
  const before = clusterIdOf(ctx.config.snapshot().mapping);
  const stored = await ctx.config.update((own) => {
    const merged = mergeLearned(own, reported, who);
    refused = merged.refused;
    keptCa = merged.keptCa;
    return merged.mapping;
  });
  if (refused.length > 0) {
    const shown = refused.slice(0, 5).join(", ") + (refused.length > 5 ? ` and ${refused.length - 5} more` : "");
    ctx.log.warn(
      `${who} has code keys that differ from this machine's (${shown}); they were not taken: this machine runs hooks, predicates and commands only from its own modules and config (see "Trust model" in the README).`,
    );
  }
  if (keptCa) {
    ctx.log.warn(`${who} reported a config without the cluster CA (${KEYS.caCert}); this machine keeps its own. Check that member: its KV has lost the CA every member needs to join or move.`);
  }
  const after = clusterIdOf(stored);
  if (!before && after) ctx.log.info(`This machine now manages ${clusterLabel(after)} (learnt from ${who}).`);
  return stored;
}
