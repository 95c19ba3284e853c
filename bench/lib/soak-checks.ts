/**
 * The verdicts of bench/soak.ts, kept pure so they can be unit-tested: which final value each
 * config key may have after the soak's writes, and whether etcd's database stayed bounded.
 */

/** One config write of the soak, in the order they were made (one at a time). */
export interface SoakWrite {
  readonly key: string;
  /** The value written; null for a `config delete`. */
  readonly value: string | null;
  /**
   * - `ok`: acknowledged by the cluster KV (a delete of a key already absent, exit 66, too);
   * - `queued`: acknowledged, but the member could not reach the KV: kept in its cache and
   *   queued, pushed by its agent when the KV answers again;
   * - `unknown`: failed or timed out: it may or may not have taken effect.
   */
  readonly outcome: "ok" | "queued" | "unknown";
}

/** What a key may hold at the end: `last` acknowledged by the KV (null: absent), or one of `also`. */
export interface Expected {
  /** The last write the KV acknowledged; null: deleted, or never written. */
  readonly last: string | null;
  /** Values a write of unknown outcome or a queued write since the last acknowledged one may have left. */
  readonly also: readonly (string | null)[];
}

/**
 * Per key, what its final value may be. An acknowledged write sets it and rules out the writes
 * of unknown outcome and the queued ones before it: they were over (or queued) before it
 * started, so a value of theirs at the end is a later acknowledged write lost — also when a
 * queued write was pushed over it.
 */
export function expectedValues(writes: readonly SoakWrite[]): Map<string, Expected> {
  const state = new Map<string, { last: string | null; unknown: (string | null)[]; queued: (string | null)[] }>();
  for (const w of writes) {
    const s = state.get(w.key) ?? { last: null, unknown: [], queued: [] };
    if (w.outcome === "ok") {
      s.last = w.value;
      s.unknown = [];
      s.queued = [];
    } else if (w.outcome === "queued") {
      s.queued.push(w.value);
    } else {
      s.unknown.push(w.value);
    }
    state.set(w.key, s);
  }
  return new Map([...state].map(([k, s]) => [k, { last: s.last, also: [...new Set([...s.unknown, ...s.queued])].filter((v) => v !== s.last) }]));
}

/** One key as a member read it at the end that is not what the writes allow. */
export interface Mismatch {
  readonly member: string;
  readonly key: string;
  readonly read: string | null;
  readonly expected: Expected;
}

/**
 * Compares what each member read (member → key → value, null: not set) with what the writes
 * allow. A key a member has no reading of (it could not be read) is not compared.
 */
export function configMismatches(expected: ReadonlyMap<string, Expected>, reads: ReadonlyMap<string, ReadonlyMap<string, string | null>>): Mismatch[] {
  const out: Mismatch[] = [];
  for (const [member, values] of reads) {
    for (const [key, e] of expected) {
      if (!values.has(key)) continue;
      const read = values.get(key) as string | null;
      if (read !== e.last && !e.also.includes(read)) out.push({ member, key, read, expected: e });
    }
  }
  return out;
}

/** One minute's reading of the voters' databases (the largest over the voters that answered). */
export interface DbSample {
  /** Minutes since the churn began. */
  readonly t: number;
  /** etcd_mvcc_db_total_size_in_use_in_bytes, the largest over the voters; null: none answered. */
  readonly inUseBytes: number | null;
  /** Keys under raptiformica/ but for the soak's own (raptiformica/soak/); null: not counted this time. */
  readonly keys: number | null;
}

export interface DbVerdict {
  readonly bounded: boolean;
  /** Largest in-use size in the second quarter of the run, and in the last quarter. */
  readonly secondQuarterMaxBytes: number | null;
  readonly lastQuarterMaxBytes: number | null;
  /** lastQuarterMax / secondQuarterMax. */
  readonly ratio: number | null;
  readonly keysAtStart: number | null;
  readonly keysAtEnd: number | null;
  readonly why: string;
}

/**
 * The database is bounded when both hold:
 * - size: the largest in-use size of the last quarter of the run ([¾ D, D]) is at most `factor`
 *   × the largest of the second quarter ([¼ D, ½ D)): once the cluster has settled into its
 *   churn, the live data and the history etcd keeps stop growing (the first quarter is left out:
 *   it holds the growth from a cluster just formed to its working size);
 * - keys: the keys under raptiformica/ at the end, but for the soak's own, are at most those at
 *   the start: members leaving, dying, being evicted and coming back leave nothing behind.
 * `durationMin` is D, the churn's length in minutes. A quarter without a reading, or no key
 * count at either end, makes the verdict false (nothing shows it bounded).
 */
export function dbVerdict(samples: readonly DbSample[], durationMin: number, factor = 1.5): DbVerdict {
  const inUse = (keep: (t: number) => boolean) => samples.filter((s) => s.inUseBytes !== null && keep(s.t)).map((s) => s.inUseBytes as number);
  const q2 = inUse((t) => t >= durationMin / 4 && t < durationMin / 2);
  // The readings after the churn ended (the final one, once the cluster is whole) count as the last quarter's.
  const q4 = inUse((t) => t >= (durationMin * 3) / 4);
  const q2max = q2.length ? Math.max(...q2) : null;
  const q4max = q4.length ? Math.max(...q4) : null;
  const counted = samples.filter((s) => s.keys !== null);
  const keysAtStart = counted[0]?.keys ?? null;
  const keysAtEnd = counted.length > 1 ? (counted[counted.length - 1]!.keys as number) : null;
  const ratio = q2max && q4max !== null ? Math.round((q4max / q2max) * 100) / 100 : null;
  const why: string[] = [];
  if (q2max === null || q4max === null) why.push(`no in-use reading in the ${q2max === null ? "second" : "last"} quarter`);
  else if (q4max > factor * q2max) why.push(`in use grew ${ratio}× from the second quarter to the last (allowed ${factor}×)`);
  if (keysAtStart === null || keysAtEnd === null) why.push("no key count at the start or at the end");
  else if (keysAtEnd > keysAtStart) why.push(`${keysAtEnd} keys at the end (but for the soak's own), more than ${keysAtStart} at the start`);
  return { bounded: why.length === 0, secondQuarterMaxBytes: q2max, lastQuarterMaxBytes: q4max, ratio, keysAtStart, keysAtEnd, why: why.join("; ") || "ok" };
}
