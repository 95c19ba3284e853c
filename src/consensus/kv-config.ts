import type { Etcd3 } from "etcd3";
import { KEY_ROOT, splitUsable, type FlatMapping, type UnusableKey } from "../config/flatten.ts";
import { deadline } from "./client.ts";
import { KEYS } from "./settings.ts";

const API_KEY = `${KEY_ROOT}/raptiformica_api_version`;

/** Keys that live only in etcd (lease-backed, ephemeral): never part of the shared config mapping. */
export function isEphemeralKey(key: string): boolean {
  return key.startsWith(KEYS.nodes) || key.startsWith(KEYS.gone) || key === KEYS.voterLog || key === KEYS.restartClaim;
}

/** The shared config as the KV holds it: the usable keys, and those skipped (see splitUsable). */
export interface KvConfig {
  readonly mapping: FlatMapping;
  readonly unusable: readonly UnusableKey[];
}

interface Snapshot extends KvConfig {
  /** Of every key read, usable or not. */
  readonly modRevisions: ReadonlyMap<string, string>;
}

async function snapshot(client: Etcd3, ms: number): Promise<Snapshot> {
  const res = await deadline("etcd read of the shared config", ms, client.getAll().prefix(`${KEY_ROOT}/`).exec());
  const raw: FlatMapping = {};
  const modRevisions = new Map<string, string>();
  for (const kv of res.kvs) {
    const key = kv.key.toString();
    if (isEphemeralKey(key)) continue;
    raw[key] = kv.value.toString();
    modRevisions.set(key, String(kv.mod_revision));
  }
  return { ...splitUsable(raw), modRevisions };
}

/** The shared config in the cluster KV (without the ephemeral node records), and the keys skipped as unusable. */
export async function readKvConfig(client: Etcd3, ms = 3000): Promise<KvConfig> {
  const { mapping, unusable } = await snapshot(client, ms);
  return { mapping, unusable };
}

/** The usable shared config in the cluster KV (without the ephemeral node records); see readKvConfig. */
export async function readKvMapping(client: Etcd3, ms = 3000): Promise<FlatMapping> {
  return (await snapshot(client, ms)).mapping;
}

/**
 * The first member to reach an empty KV uploads its cached mapping (the original's "empty KV
 * gets the cache"), in one transaction guarded on the KV still being empty, so two nodes
 * racing here cannot interleave their mappings.
 */
export async function seedKvIfEmpty(client: Etcd3, mapping: FlatMapping, ms = 5000): Promise<boolean> {
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
 */
export async function updateKvMapping(client: Etcd3, change: KvChange, ms = 5000, attempts = 8): Promise<FlatMapping> {
  for (let i = 0; i < attempts; i++) {
    const snap = await snapshot(client, ms);
    const dropped = new Set<string>();
    const unusable = new Set(snap.unusable.map((u) => u.key));
    const after = change({ ...snap.mapping }, { unusable: snap.unusable, drop: (k) => void (unusable.has(k) && dropped.add(k)) });
    const touched = new Set<string>();
    for (const [k, v] of Object.entries(after)) if (snap.mapping[k] !== v) touched.add(k);
    for (const k of Object.keys(snap.mapping)) if (!(k in after)) touched.add(k);
    if (touched.size === 0 && dropped.size === 0) return after;
    let txn = client.if(API_KEY, "Create", ">", 0);
    for (const k of [...touched, ...dropped]) txn = txn.and(k, "Mod", "==", Number(snap.modRevisions.get(k) ?? 0));
    const ops = [...touched].map((k) => (k in after ? client.put(k).value(after[k] as string) : client.delete().key(k)));
    ops.push(...[...dropped].map((k) => client.delete().key(k)));
    const res = await deadline("etcd write of the shared config", ms, txn.then(...ops).commit());
    if (res.succeeded) return after;
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
  }
  throw new ConcurrentChange("the shared config kept changing under this write; try again");
}
