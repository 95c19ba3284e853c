import type { Context } from "./context.ts";
import { allInstances, cleanUpInstance, isAlive, listInstances, type Instance } from "../compute/instance.ts";
import { removeOwnedState, requireOwnedCacheDir } from "../config/cache-owner.ts";
import type { FlatMapping } from "../config/flatten.ts";
import { listTypes } from "../config/types.ts";
import { parseNeighbours, withoutNeighbours } from "../mesh/neighbours.ts";
import { errorMessage } from "../util/errors.ts";
import { computeEnv } from "./spawn.ts";
import { clusterFor } from "./cluster/cluster.ts";

export interface PruneReport {
  readonly removed: readonly Instance[];
  readonly kept: readonly Instance[];
  /** Neighbour entries (public keys) removed from the cluster config. */
  readonly neighbours: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * `prune`: every local instance (of every compute × server type in the config) whose compute
 * type reports it stale is cleaned up, and the neighbour entries carrying its id are removed
 * from the cluster config — matched by uuid only, so slaved (uuid-less) members in the same
 * cluster are never touched. `force` removes every instance (what `destroy` does).
 * @throws UserError when a compute type's clean-up fails; a neighbour entry that cannot be removed is a warning, not an error.
 */
export async function prune(ctx: Context, opts: { force?: boolean } = {}): Promise<PruneReport> {
  const { mapping } = ctx.config.snapshot();
  const env = computeEnv(ctx);
  const removed: Instance[] = [];
  const kept: Instance[] = [];
  for (const compute of listTypes(mapping, "compute")) {
    for (const server of listTypes(mapping, "server")) {
      for (const inst of listInstances(env, compute, server)) {
        if (!opts.force && (await isAlive(env, mapping, inst))) {
          kept.push(inst);
          continue;
        }
        ctx.log.info(`removing instance ${inst.uuid} (${compute}, ${server})`);
        await cleanUpInstance(env, mapping, inst);
        removed.push(inst);
      }
    }
  }
  const uuids = new Set(removed.map((i) => i.uuid));
  const warnings: string[] = [];
  let neighbours: string[] = [];
  if (uuids.size > 0) {
    try {
      neighbours = await removeNeighbours(ctx, mapping, uuids);
    } catch (e) {
      warnings.push(`the neighbour entries of the removed instances could not be removed from the cluster: ${errorMessage(e)}`);
    }
  }
  return { removed, kept, neighbours, warnings };
}

function neighbourKeysWith(mapping: FlatMapping, uuids: ReadonlySet<string>): string[] {
  return parseNeighbours(mapping)
    .filter((n) => n.uuid !== undefined && uuids.has(n.uuid))
    .map((n) => n.publicKey);
}

/**
 * On a member: through the cluster KV. On an operator machine: on the first reachable member,
 * and in the local copy. With no member left at all, in the local copy only.
 */
async function removeNeighbours(ctx: Context, mapping: FlatMapping, uuids: ReadonlySet<string>): Promise<string[]> {
  const known = neighbourKeysWith(mapping, uuids);
  // The removed instances are not asked: they are gone.
  const cluster = clusterFor(ctx, withoutNeighbours(mapping, known));
  // Here (a member's KV, or this machine's own config) the entries are looked up where they are removed.
  const keys = cluster.where === "here" ? neighbourKeysWith(await cluster.readConfig(), uuids) : known;
  if (keys.length === 0) return [];
  await cluster.forgetNeighbours(keys);
  // Through a member: this machine's copy forgets them too.
  if (cluster.where === "member") await ctx.config.update((m) => withoutNeighbours(m, keys));
  return keys;
}

export interface DestroyReport extends PruneReport {
  /** Instance dirs left because no compute type in the config knows them (see allInstances). */
  readonly unknown: readonly Instance[];
  /** Entries named like raptiformica's that were not deleted because they are not of its type. */
  readonly wrongType: readonly string[];
}

/**
 * `destroy`: every local instance goes, then this machine forgets the cluster (its
 * mutable_config.json) and, if asked, its caches. The identities stay: `ssh/` (the SSH key
 * members trust) and `known_hosts` (the host keys pinned for them), and so does a member's
 * `node/` (`clean` is what takes a member apart). Only those entries of the cache dir are
 * deleted, and only when of raptiformica's type (removeOwnedState); the dir itself goes only
 * when nothing else is left in it.
 *
 * @throws UserError before anything is torn down when the cache dir is not raptiformica's
 *   (requireOwnedCacheDir), or when a compute type's clean-up fails.
 */
export async function destroy(ctx: Context, opts: { purgeArtifacts?: boolean; purgeModules?: boolean }): Promise<DestroyReport> {
  requireOwnedCacheDir(ctx.paths.root, "destroy");
  const report = await prune(ctx, { force: true });
  const only = ["mutable_config.json", ...(opts.purgeArtifacts ? ["artifacts"] : []), ...(opts.purgeModules ? ["modules"] : [])];
  const { wrongType } = removeOwnedState(ctx.paths.root, { only });
  return { ...report, unknown: allInstances(ctx.paths.machines), wrongType };
}
