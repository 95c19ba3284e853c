import type { Etcd3 } from "etcd3";
import { KEY_ROOT, splitUsable, type FlatMapping, type UnusableKey } from "../config/flatten.ts";
import { deadline, isDropped } from "./client.ts";
import { KEYS } from "./settings.ts";
import { rangesOutside } from "./watch-ranges.ts";

const API_KEY = `${KEY_ROOT}/raptiformica_api_version`;

/**
 * Keys that live only in etcd (lease-backed, ephemeral: node records, link reports; the
 * voter manager's bookkeeping): never part of the shared config mapping, never mirrored into a
 * local cache, never seeded from one.
 */
export function isEphemeralKey(key: string): boolean {
  return key.startsWith(KEYS.nodes) || key.startsWith(KEYS.links) || key.startsWith(KEYS.gone) || key === KEYS.voterLog || key === KEYS.restartClaim || key.startsWith(KEYS.jobs);
}

/** The shared config as the KV holds it: the usable keys, and those skipped (see splitUsable). */
export interface KvConfig {
  readonly mapping: FlatMapping;
  readonly unusable: readonly UnusableKey[];
  /** The KV's revision the read saw (one transaction: one revision for every range); a watch from revision + 1 misses nothing after it. */
  readonly revision?: bigint;
}

interface Snapshot extends KvConfig {
  /** Of every key read, usable or not. */
  readonly modRevisions: ReadonlyMap<string, string>;
}

/**
 * Where the shared config lives: raptiformica/ but the ephemeral prefixes, which grow with the
 * cluster and its history (node records, link reports, gone marks, job runs with their output)
 * and are never config; the two single ephemeral keys are dropped after the read. Reading the
 * whole prefix fetched them all — every member every 30 s and before every config write — and
 * past the client's 4 MiB message limit (about 1 500 job runs' output) failed outright.
 */
const CONFIG_RANGES = rangesOutside(`${KEY_ROOT}/`, [KEYS.nodes, KEYS.links, KEYS.gone, KEYS.jobs]);

async function snapshot(client: Etcd3, ms: number): Promise<Snapshot> {
  // One transaction of range reads: one round trip, one revision for all of them.
  const res = await deadline("etcd read of the shared config", ms, client.kv.txn({ success: CONFIG_RANGES.map((r) => ({ request_range: { key: r.start, range_end: r.end } })) }));
  const raw: FlatMapping = {};
  const modRevisions = new Map<string, string>();
  for (const op of res.responses) {
    for (const kv of op.response_range?.kvs ?? []) {
      const key = kv.key.toString();
      if (isEphemeralKey(key)) continue;
      raw[key] = kv.value.toString();
      modRevisions.set(key, String(kv.mod_revision));
    }
  }
  return { ...splitUsable(raw), modRevisions, revision: BigInt(res.header.revision) };
}

/** The shared config in the cluster KV (without the ephemeral node records), and the keys skipped as unusable. */
export async function readKvConfig(client: Etcd3, ms = 3000): Promise<KvConfig> {
  const { mapping, unusable, revision } = await snapshot(client, ms);
  return { mapping, unusable, revision };
}

/** The usable shared config in the cluster KV (without the ephemeral node records); see readKvConfig. */
export async function readKvMapping(client: Etcd3, ms = 3000): Promise<FlatMapping> {
  return (await snapshot(client, ms)).mapping;
}

/**
 * The first member to reach an empty KV uploads its cached mapping (the original's "empty KV
 * gets the cache"), in one transaction guarded on the KV still being empty, so two nodes
 * racing here cannot interleave their mappings. Every agent runs this on its first connect, so
 * the KV is asked first (one small read) and the transaction is sent only while it is empty:
 * the cache grows with the cluster (1000 members: ~1 MB), past etcd's request limit (1.5 MiB)
 * at ~1600 members, where a seed sent regardless would fail every connect.
 * Returns whether this call seeded the KV.
 * @throws Error (etcd's, or a deadline's) when the KV does not answer within `ms` (each call).
 */
export async function seedKvIfEmpty(client: Etcd3, mapping: FlatMapping, ms = 5000): Promise<boolean> {
  if (await deadline("etcd read of the config's API version", ms, client.get(API_KEY).exists())) return false;
  const puts = Object.entries(mapping)
    .filter(([k]) => !isEphemeralKey(k))
    .map(([k, v]) => client.put(k).value(v));
  const res = await deadline("etcd seed of the shared config", ms, client.if(API_KEY, "Create", "==", 0).then(...puts).commit());
  return res.succeeded;
}

export class ConcurrentChange extends Error {}

/** What a change of the shared config sees besides the mapping: the unusable keys, which it may drop. */
export interface KvChangeContext {
  readonly unusable: readonly UnusableKey[];
  /** Deletes this unusable key in the same transaction (`config delete` of a key no mapping can hold). */
  drop(key: string): void;
}

export type KvChange = (m: FlatMapping, ctx: KvChangeContext) => FlatMapping;

/**
 * Read-modify-write of the shared config in the KV: the change is applied to a snapshot of the
 * usable keys and committed only if none of the keys it touches changed meanwhile (optimistic
 * concurrency, retried a few times), so concurrent `config set` on different members lose
 * nothing. Unusable keys are left alone unless the change drops them. Returns the usable
 * mapping after the change.
 *
 * A round cut by a dropped connection (isDropped: a new proxy member's grpc-proxy restarts as
 * it learns its upstreams; a voter was replaced, or left and stopped its etcd) is run again after `dropPauseMs`,
 * at most `dropRetries` times: the commit is conditional on the snapshot's revisions, so a
 * round that was applied before the cut is found applied (nothing left to change) and a round
 * that was not is made again. CI saw a spawn fail this way: the new member's `config set` of
 * its neighbour entry, cut 12 s into its first join.
 * @throws ConcurrentChange after `attempts` rounds lost to other writers; the etcd error (or a
 *   DeadlineExceeded after `ms`) when the KV does not answer, or drops the connection again.
 */
export async function updateKvMapping(client: Etcd3, change: KvChange, ms = 5000, attempts = 8, dropRetries = 3, dropPauseMs = 500): Promise<FlatMapping> {
  let drops = 0;
  for (let i = 0; i < attempts; i++) {
    let outcome: { done: true; after: FlatMapping } | { done: false };
    try {
      outcome = await updateRound(client, change, ms);
    } catch (e) {
      if (!isDropped(e) || drops >= dropRetries) throw e;
      drops += 1;
      i -= 1; // a dropped connection is not a round lost to another writer
      await new Promise((r) => setTimeout(r, dropPauseMs));
      continue;
    }
    if (outcome.done) return outcome.after;
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
  }
  throw new ConcurrentChange("the shared config kept changing under this write; try again");
}

/** One optimistic round of updateKvMapping: done with the mapping after, or lost to a concurrent writer. */
async function updateRound(client: Etcd3, change: KvChange, ms: number): Promise<{ done: true; after: FlatMapping } | { done: false }> {
  const snap = await snapshot(client, ms);
  const dropped = new Set<string>();
  const unusable = new Set(snap.unusable.map((u) => u.key));
  const after = change({ ...snap.mapping }, { unusable: snap.unusable, drop: (k) => void (unusable.has(k) && dropped.add(k)) });
  const touched = new Set<string>();
  for (const [k, v] of Object.entries(after)) if (snap.mapping[k] !== v) touched.add(k);
  for (const k of Object.keys(snap.mapping)) if (!(k in after)) touched.add(k);
  if (touched.size === 0 && dropped.size === 0) return { done: true, after };
  let txn = client.if(API_KEY, "Create", ">", 0);
  for (const k of [...touched, ...dropped]) txn = txn.and(k, "Mod", "==", Number(snap.modRevisions.get(k) ?? 0));
  const ops = [...touched].map((k) => (k in after ? client.put(k).value(after[k] as string) : client.delete().key(k)));
  ops.push(...[...dropped].map((k) => client.delete().key(k)));
  const res = await deadline("etcd write of the shared config", ms, txn.then(...ops).commit());
  return res.succeeded ? { done: true, after } : { done: false };
}
