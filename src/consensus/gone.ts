import type { Etcd3 } from "etcd3";
import type { FlatMapping } from "../config/flatten.ts";
import { parseNeighbours, withoutNeighbours, type Neighbour } from "../mesh/neighbours.ts";
import { deadline } from "./client.ts";
import { readKvMapping, updateKvMapping } from "./kv-config.ts";
import { readNodeRecords } from "./registry.ts";
import { KEYS } from "./settings.ts";
import { appendVoterLog } from "./voters.ts";

/**
 * Eviction of members that are gone for good, like the original's evict_gone_machines: a
 * neighbour with no live node record (failed, or left on purpose) is marked with the time it
 * was first seen gone (`raptiformica/gone/<key>`, only in etcd); once that is older than
 * `meshnet/evict_after`, its neighbour entry is deleted — which takes it out of every member's
 * Yggdrasil peers and allowed keys. A node that comes back before then is unmarked: a slow node
 * is never dropped.
 */
export interface GonePlan {
  readonly mark: readonly string[];
  readonly unmark: readonly string[];
  readonly evict: readonly { readonly publicKey: string; readonly name: string; readonly goneMs: number }[];
}

export function planGone(p: {
  readonly neighbours: readonly Neighbour[];
  readonly alive: ReadonlySet<string>;
  readonly goneSince: ReadonlyMap<string, number>;
  readonly self: string;
  readonly now: number;
  readonly evictAfterMs: number;
}): GonePlan {
  const mark: string[] = [];
  const unmark: string[] = [];
  const evict: { publicKey: string; name: string; goneMs: number }[] = [];
  const known = new Set(p.neighbours.map((n) => n.publicKey));
  for (const n of p.neighbours) {
    if (n.publicKey === p.self || p.alive.has(n.publicKey)) {
      if (p.goneSince.has(n.publicKey)) unmark.push(n.publicKey);
      continue;
    }
    const since = p.goneSince.get(n.publicKey);
    if (since === undefined) mark.push(n.publicKey);
    else if (p.now - since >= p.evictAfterMs) evict.push({ publicKey: n.publicKey, name: n.name ?? n.publicKey.slice(0, 12), goneMs: p.now - since });
  }
  // Marks of neighbours that are no longer there at all.
  for (const k of p.goneSince.keys()) if (!known.has(k)) unmark.push(k);
  return { mark, unmark, evict };
}

export async function readGoneSince(client: Etcd3, ms = 2000): Promise<Map<string, number>> {
  const all = await deadline("etcd read of gone marks", ms, client.getAll().prefix(KEYS.gone).strings());
  const out = new Map<string, number>();
  for (const [key, value] of Object.entries(all)) {
    const t = Number(value);
    if (Number.isFinite(t)) out.set(key.slice(KEYS.gone.length), t);
  }
  return out;
}

export async function applyGoneMarks(client: Etcd3, plan: GonePlan, now: number, ms = 2000): Promise<void> {
  for (const k of plan.mark) await deadline("etcd write of a gone mark", ms, client.put(`${KEYS.gone}${k}`).value(String(now)).exec());
  for (const k of plan.unmark) await deadline("etcd delete of a gone mark", ms, client.delete().key(`${KEYS.gone}${k}`).exec());
}

/**
 * One eviction pass against the cluster KV (the leader's agent runs it every few seconds;
 * `members --evict` once, now). Returns what was evicted.
 */
export async function evictionPass(
  client: Etcd3,
  opts: { self: string; evictAfterMs: number; now?: number; log?: (line: string) => void; mapping?: FlatMapping },
): Promise<GonePlan["evict"]> {
  const now = opts.now ?? Date.now();
  // The agent passes its watched copy of the config: the pass runs every few seconds, and
  // re-reading the whole config each time grows with the cluster for nothing.
  const [mapping, records, goneSince] = await Promise.all([opts.mapping ?? readKvMapping(client, 2000), readNodeRecords(client, 2000), readGoneSince(client, 2000)]);
  const plan = planGone({
    neighbours: parseNeighbours(mapping),
    alive: new Set(records.map((r) => r.publicKey)),
    goneSince,
    self: opts.self,
    now,
    evictAfterMs: opts.evictAfterMs,
  });
  await applyGoneMarks(client, plan, now);
  if (plan.evict.length === 0) return [];
  const keys = plan.evict.map((e) => e.publicKey);
  // Logged first: the eviction makes every member restart yggdrasil (a key is no longer
  // allowed), and the KV may not answer for a moment right after.
  for (const e of plan.evict) {
    const change = `evicted ${e.name} (gone for ${Math.round(e.goneMs / 1000)} s)`;
    opts.log?.(change);
    await appendVoterLog(client, { time: new Date(now).toISOString(), change });
  }
  // The config change that evicts: every key of those neighbours goes.
  await updateKvMapping(client, (m) => withoutNeighbours(m, keys), 3000);
  await applyGoneMarks(client, { mark: [], unmark: keys, evict: [] }, now).catch(() => undefined);
  return plan.evict;
}
