/**
 * Linearizability of recorded register histories: Wing & Gong's search for a linearization,
 * with Lowe's memoisation of (set of operations linearized, register state) — the "WGL"
 * algorithm of porcupine and of Knossos' `wgl` checker — over each key on its own (a history is
 * linearizable iff each key's is: Herlihy & Wing's locality).
 *
 * The model is one register per key, starting absent (null): `write(v)`, `read() → v | null`
 * and `cas(expect, v) → swapped?` (an etcd transaction comparing the value). Operations carry
 * their invocation and completion times in ms from one clock; an operation whose answer never
 * came (a timeout, a killed client) has outcome "unknown": it may have taken effect at any
 * moment after its invocation, or never.
 *
 * Real-time order: `a` precedes `b` only when a.complete < b.invoke; equal times count as
 * overlapping. Timestamps taken as whole ms (invocation before the request leaves, completion
 * after the answer arrived) can therefore never order two operations the wrong way round.
 *
 * Before the search, per key (each step keeps the verdict exact; the proofs are in the comments
 * of `prepare`):
 * - failed operations (certainly without effect) and reads without an answer are dropped;
 * - an unknown write whose value no completed operation observed is dropped (it can always be
 *   linearized last) — skipped on keys with a failed compare-and-set, which observes an absence;
 * - an unknown write whose value a completed operation observed must have taken effect before
 *   that operation ended: it is given that completion time instead of "never", which keeps the
 *   search from trying it at every later point.
 *
 * What decides: where every value is written at most once and there is no compare-and-set —
 * what the chaos workload records — Gibbons & Korach's zone test, exact in O(n log n) (see
 * `zoneTest`); otherwise the search. The search alone blows up when a stalled endpoint's dozens
 * of writes are answered at once (every order of them is a different linearized set), which
 * the zone test does not care about; the search, given it as a second opinion, still decides
 * most keys. In the search, a read of the register's current value (or a cas that fails on it)
 * is always tried first and alone, which is safe and keeps reads from multiplying the orders.
 *
 * Pure: no I/O. The search is bounded by `timeLimitMs` and `memoryLimitBytes`; a key it could
 * not decide within them is "unknown", never a guess.
 */

/** A register's value; null: the key does not exist. */
export type RegisterValue = string | null;

/**
 * One client operation on one key.
 * - `write`: `value` is the value written (values should be unique per key: reads then tell
 *   which write they saw).
 * - `read`: `value` is what was read (null: no such key); meaningless unless outcome is "ok".
 * - `cas`: `expect` is the value compared with, `value` the new one; `swapped` whether it
 *   swapped (outcome "ok" only).
 * Outcome: "ok" the answer arrived (`complete` required); "fail" certainly no effect (a read
 * error, a refused request); "unknown" the answer never came: it may have taken effect.
 */
export interface Operation {
  /** Unique within the history, for reports. */
  readonly id: number;
  /** Who ran it (member, interface), for reports. */
  readonly process: string;
  readonly key: string;
  readonly f: "write" | "read" | "cas";
  readonly value?: RegisterValue;
  readonly expect?: RegisterValue;
  readonly swapped?: boolean;
  readonly outcome: "ok" | "fail" | "unknown";
  /** Epoch ms when the request was made. */
  readonly invoke: number;
  /** Epoch ms when the answer arrived; required when outcome is "ok". */
  readonly complete?: number;
}

export interface CheckOptions {
  /** Per key: past this the verdict is "unknown" (default 30 000 ms). */
  readonly timeLimitMs?: number;
  /** Per key: memo past this size (approximate) makes the verdict "unknown" (default 512 MiB). */
  readonly memoryLimitBytes?: number;
  /** The register's value before the history (default null: absent). */
  readonly initial?: RegisterValue;
  /**
   * "auto" (default): the zone test where it applies (every value written at most once, no
   * cas), else the search; "search": always the search (e.g. to confirm the zone test).
   */
  readonly method?: "auto" | "search";
}

/** Why a key's history is not linearizable. */
export interface Explanation {
  readonly summary: string;
  /** The operations that show it (the zone test: those bounding the two spans that clash; the search: the candidates it had left). */
  readonly operations: readonly Operation[];
  /** The operation that could not be placed (the search), or the read that saw a value it could not have (the zone test). */
  readonly blocked?: Operation;
  /** The search only: the tail of the longest linearization found, and the register's value after it. */
  readonly linearized?: readonly Operation[];
  readonly state?: RegisterValue;
}

export interface KeyVerdict {
  readonly key: string;
  readonly result: "linearizable" | "non-linearizable" | "unknown";
  /** What decided: the zone test (unique values, no cas) or the search. */
  readonly method: "zones" | "search";
  /** Operations of this key in the history given. */
  readonly operations: number;
  /** Operations the search had to place (after dropping and bounding, see the module doc). */
  readonly searched: number;
  /** Search steps taken, and ms spent. */
  readonly steps: number;
  readonly ms: number;
  readonly explanation?: Explanation;
}

/**
 * Checks a whole history, each key on its own, keys in sorted order.
 * @throws Error for malformed operations (an "ok" one without completion, completion before
 *   invocation, a write without value, a cas without expect).
 */
export function checkHistory(ops: readonly Operation[], opts: CheckOptions = {}): KeyVerdict[] {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (!list) byKey.set(op.key, (list = []));
    list.push(op);
  }
  return [...byKey.keys()].sort().map((key) => checkKey(key, byKey.get(key)!, opts));
}

function validate(op: Operation): void {
  const where = `operation ${op.id} (${op.f} on ${op.key} by ${op.process})`;
  if (!Number.isFinite(op.invoke)) throw new Error(`${where}: no invocation time`);
  if (op.outcome === "ok" && (op.complete === undefined || !Number.isFinite(op.complete))) throw new Error(`${where}: completed but no completion time`);
  if (op.complete !== undefined && op.complete < op.invoke) throw new Error(`${where}: completed (${op.complete}) before it was invoked (${op.invoke})`);
  if (op.f === "write" && typeof op.value !== "string") throw new Error(`${where}: a write needs a string value`);
  if (op.f === "cas" && (typeof op.value !== "string" || op.expect === undefined)) throw new Error(`${where}: a cas needs expect and a string value`);
  if (op.f === "cas" && op.outcome === "ok" && typeof op.swapped !== "boolean") throw new Error(`${where}: a completed cas needs swapped`);
  if (op.f === "read" && op.outcome === "ok" && op.value === undefined) throw new Error(`${where}: a completed read needs a value (null: absent)`);
}

/** The value an operation may leave in the register (writes, and cas that may swap). */
function written(op: Operation): string | undefined {
  if (op.f === "write") return op.value as string;
  if (op.f === "cas" && (op.outcome === "unknown" || op.swapped === true)) return op.value as string;
  return undefined;
}

interface Prepared {
  /** Operations to place, with the completion time the search uses (Infinity: may come any time later, or never). */
  readonly ops: readonly { op: Operation; end: number }[];
  /** A completed read of a value no operation on the key ever wrote (nor the initial value). */
  readonly phantom?: Operation;
}

/**
 * Drops what cannot matter and bounds unknown operations (module doc). Soundness, for a
 * linearization L of the full history:
 * - dropping an unknown write/cas whose value is in no observed set: in L, while the register
 *   held that value, no completed read ran (it would have returned it) and no completed cas
 *   swapped (it would have expected it); kept unknown cas whose value is observed had their
 *   `expect` added to the observed set, so none of them depended on it; unknown operations
 *   that had no effect move to the end of L. Every remaining operation sees the same value as
 *   in L. A failed cas only needs "value ≠ expect", which a dropped write may have provided,
 *   so keys with one are not pruned.
 * - an unknown operation that is the only writer of a value a completed read returned (or a
 *   completed cas expected) took effect before that operation's linearization point, hence
 *   before its completion.
 */
function prepare(ops: readonly Operation[], initial: RegisterValue): Prepared {
  const live = ops.filter((op) => op.outcome !== "fail" && !(op.f === "read" && op.outcome !== "ok"));
  const writers = new Map<string, Operation[]>();
  for (const op of ops) {
    // Failed writes count as "written" for the phantom test only through a separate check below.
    const v = written(op);
    if (v !== undefined && op.outcome !== "fail") {
      let w = writers.get(v);
      if (!w) writers.set(v, (w = []));
      w.push(op);
    }
  }
  for (const op of live) {
    if (op.f === "read" && op.value !== null && op.value !== undefined && op.value !== initial && !writers.has(op.value)) {
      return { ops: [], phantom: op };
    }
  }
  // Values a completed operation saw, and what they saw them by (earliest completion).
  const observedBy = new Map<RegisterValue, number>();
  const observe = (v: RegisterValue | undefined, at: number) => {
    if (v === undefined) return;
    const prev = observedBy.get(v);
    if (prev === undefined || at < prev) observedBy.set(v, at);
  };
  const failedCas = live.some((op) => op.f === "cas" && op.outcome === "ok" && op.swapped === false);
  for (const op of live) {
    if (op.outcome !== "ok") continue;
    if (op.f === "read") observe(op.value, op.complete!);
    if (op.f === "cas" && op.swapped) observe(op.expect, op.complete!);
  }
  // Values whose writers must stay: observed ones, and (to a fixpoint) what kept unknown cas expect.
  const needed = new Set<RegisterValue>(observedBy.keys());
  const unknownCas = live.filter((op) => op.f === "cas" && op.outcome === "unknown");
  for (let changed = true; changed; ) {
    changed = false;
    for (const op of unknownCas) {
      if (needed.has(op.value as string) && !needed.has(op.expect as RegisterValue)) {
        needed.add(op.expect as RegisterValue);
        changed = true;
      }
    }
  }
  const out: { op: Operation; end: number }[] = [];
  for (const op of live) {
    if (op.outcome === "ok") {
      out.push({ op, end: op.complete! });
      continue;
    }
    // Unknown write or cas.
    const v = op.value as string;
    if (!failedCas && !needed.has(v)) continue;
    const by = observedBy.get(v);
    const onlyWriter = (writers.get(v)?.length ?? 0) === 1 && v !== initial;
    out.push({ op, end: by !== undefined && onlyWriter ? Math.max(by, op.invoke) : Infinity });
  }
  return { ops: out };
}

/** Deterministic 32-bit generator for the Zobrist keys (same hashes every run). */
function zobrist(n: number): Int32Array {
  const z = new Int32Array(n);
  let s = 0x2545f491;
  for (let i = 0; i < n; i++) {
    // xorshift32
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    z[i] = s;
  }
  return z;
}

/**
 * The register model's step: whether `op` may take effect on `state`, and the state after.
 * Returns undefined when it may not.
 */
function step(state: number, op: Operation, id: (v: RegisterValue) => number): number | undefined {
  switch (op.f) {
    case "write":
      return id(op.value as string);
    case "read":
      return id(op.value as RegisterValue) === state ? state : undefined;
    case "cas": {
      const matches = id(op.expect as RegisterValue) === state;
      if (op.outcome === "unknown") return matches ? id(op.value as string) : state;
      if (op.swapped) return matches ? id(op.value as string) : undefined;
      return matches ? undefined : state;
    }
  }
}

/**
 * Checks one key's operations (all must be on that key). See the module doc for the model, the
 * real-time order and the bound.
 * @throws Error for malformed operations (see checkHistory).
 */
export function checkKey(key: string, ops: readonly Operation[], opts: CheckOptions = {}): KeyVerdict {
  const started = performance.now();
  const initial = opts.initial ?? null;
  const timeLimitMs = opts.timeLimitMs ?? 30_000;
  for (const op of ops) {
    if (op.key !== key) throw new Error(`operation ${op.id} is on ${op.key}, not ${key}`);
    validate(op);
  }
  const prepared = prepare(ops, initial);
  const done = (result: KeyVerdict["result"], steps: number, explanation?: Explanation, method: KeyVerdict["method"] = "search"): KeyVerdict => ({
    key,
    result,
    method,
    operations: ops.length,
    searched: prepared.ops.length,
    steps,
    ms: Math.round(performance.now() - started),
    ...(explanation ? { explanation } : {}),
  });
  if (prepared.phantom) {
    const p = prepared.phantom;
    return done("non-linearizable", 0, {
      summary: `${describe(p)} returned ${JSON.stringify(p.value)}, a value no operation on ${key} wrote`,
      operations: [p],
      blocked: p,
    }, opts.method === "search" ? "search" : "zones");
  }
  if (opts.method !== "search") {
    const z = zoneTest(prepared.ops, initial);
    if (z) return done(z.ok ? "linearizable" : "non-linearizable", 0, z.ok ? undefined : z.explanation, "zones");
  }

  // Interned register values: states are small ints (0 = absent).
  const valueIds = new Map<RegisterValue, number>([[null, 0]]);
  const values: RegisterValue[] = [null];
  const id = (v: RegisterValue): number => {
    let i = valueIds.get(v);
    if (i === undefined) {
      i = values.length;
      valueIds.set(v, i);
      values.push(v);
    }
    return i;
  };

  const n = prepared.ops.length;
  const opsOf = prepared.ops.map((p) => p.op);
  // Entries: 2 per operation (call, return); list position 0 is the head sentinel, entry e at e + 1.
  const order = Array.from({ length: 2 * n }, (_, e) => e);
  const time = (e: number) => (e < n ? prepared.ops[e]!.op.invoke : prepared.ops[e - n]!.end);
  // By time; at equal times calls before returns (overlapping); then by operation, for stable runs.
  order.sort((a, b) => time(a) - time(b) || (a < n ? 0 : 1) - (b < n ? 0 : 1) || (a % n) - (b % n));
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  {
    let last = 0;
    for (const e of order) {
      next[last] = e + 1;
      prev[e + 1] = last;
      last = e + 1;
    }
  }
  // Node p (1..2n): entry p - 1; a call when p - 1 < n; its return node is p + n.
  const isCall = (p: number) => p - 1 < n;
  const opIndex = (p: number) => (p - 1) % n;
  const lift = (p: number) => {
    const m = p + n;
    next[prev[p]!] = next[p]!;
    if (next[p]! !== -1) prev[next[p]!] = prev[p]!;
    next[prev[m]!] = next[m]!;
    if (next[m]! !== -1) prev[next[m]!] = prev[m]!;
  };
  const unlift = (p: number) => {
    const m = p + n;
    next[prev[m]!] = m;
    if (next[m]! !== -1) prev[next[m]!] = m;
    next[prev[p]!] = p;
    prev[next[p]!] = p;
  };

  const words = Math.ceil(n / 32) || 1;
  const bits = new Uint32Array(words);
  const z = zobrist(n);
  let hash = 0;
  // Lowe's memo: (linearized set, state) already explored.
  const cache = new Map<number, { bits: Uint32Array; state: number }[]>();
  const seen = (h: number, b: Uint32Array, state: number): boolean => {
    const bucket = cache.get(h);
    if (!bucket) return false;
    outer: for (const c of bucket) {
      if (c.state !== state) continue;
      for (let w = 0; w < words; w++) if (c.bits[w] !== b[w]) continue outer;
      return true;
    }
    return false;
  };
  let cachedWords = 0;
  const memoryWords = Math.floor((opts.memoryLimitBytes ?? 512 * 1024 * 1024) / 4);
  const remember = (h: number, b: Uint32Array, state: number) => {
    cachedWords += words + 8;
    let bucket = cache.get(h);
    if (!bucket) cache.set(h, (bucket = []));
    bucket.push({ bits: b, state });
  };

  const calls: { node: number; state: number; forced: boolean }[] = [];
  let state = id(initial);
  let steps = 0;
  const deadline = performance.now() + timeLimitMs;
  // The deepest point the search reached, for the explanation.
  let best: { linearized: number[]; state: number; blocked: number; candidates: number[] } | undefined;

  /** Linearizes call node q next (the register then holds `after`), unless that configuration was explored already. */
  const push = (q: number, after: number, forced: boolean): boolean => {
    const i = opIndex(q);
    const h = (hash ^ z[i]! ^ Math.imul(after + 1, 0x9e3779b1)) | 0;
    bits[i >>> 5]! |= 1 << (i & 31);
    if (seen(h, bits, after)) {
      bits[i >>> 5]! &= ~(1 << (i & 31));
      return false;
    }
    remember(h, bits.slice(), after);
    calls.push({ node: q, state, forced });
    state = after;
    hash ^= z[i]!;
    lift(q);
    return true;
  };
  /**
   * Undoes the last choice and returns where to look for the next alternative at that level;
   * a forced choice had no alternative, so its level is undone too. -1: nothing left to undo.
   */
  const backtrack = (): number => {
    for (;;) {
      const top = calls.pop();
      if (!top) return -1;
      const i = opIndex(top.node);
      state = top.state;
      bits[i >>> 5]! &= ~(1 << (i & 31));
      hash ^= z[i]!;
      unlift(top.node);
      if (!top.forced) return next[top.node]!;
    }
  };
  /**
   * An operation that leaves the register as it is (a completed read, a completed cas that did
   * not swap) and fits its value now can be linearized first: every operation that had to come
   * before it is linearized already (it is a candidate), and moving it to the front of any
   * linearization from here changes no value anyone sees. So when one exists it is the only
   * choice tried: without this, pending writes would be tried before it in every order (a
   * stalled endpoint's dozen writes piled up made the search run out of time).
   */
  const keepsState = (op: Operation) => op.outcome === "ok" && (op.f === "read" || (op.f === "cas" && op.swapped === false));

  let p = next[0]!;
  let fresh = true;
  while (next[0]! !== -1) {
    if (++steps % 4096 === 0 && performance.now() > deadline) return done("unknown", steps);
    if (cachedWords > memoryWords) return done("unknown", steps);
    if (fresh) {
      fresh = false;
      let forced = -1;
      for (let q = next[0]!; q !== -1 && isCall(q); q = next[q]!) {
        const op = opsOf[opIndex(q)]!;
        if (keepsState(op) && step(state, op, id) === state) {
          forced = q;
          break;
        }
      }
      if (forced !== -1) {
        if (push(forced, state, true)) {
          p = next[0]!;
          fresh = true;
          continue;
        }
        // Explored before, and it failed: so does this configuration (see keepsState).
        p = backtrack();
        if (p === -1) break;
        continue;
      }
    }
    if (isCall(p)) {
      const after = step(state, opsOf[opIndex(p)]!, id);
      if (after !== undefined && push(p, after, false)) {
        p = next[0]!;
        fresh = true;
        continue;
      }
      p = next[p]!;
    } else {
      // A completion: every operation before it must be linearized by now. Back up.
      if (!best || calls.length > best.linearized.length) {
        const candidates: number[] = [];
        for (let q = next[0]!; q !== -1 && q !== p; q = next[q]!) if (isCall(q)) candidates.push(opIndex(q));
        best = { linearized: calls.map((c) => opIndex(c.node)), state, blocked: opIndex(p), candidates };
      }
      p = backtrack();
      if (p === -1) break;
    }
  }
  if (next[0]! === -1) return done("linearizable", steps);
  // Set: the first dead end of any search is a completion reached (a memo hit needs an earlier one).
  const b = best!;
  const blocked = opsOf[b.blocked]!;
  const lin = b.linearized.map((i) => opsOf[i]!);
  const cands = b.candidates.map((i) => opsOf[i]!);
  return done("non-linearizable", steps, {
    summary:
      `after ${lin.length} operation(s) linearized the register holds ${JSON.stringify(values[b.state])}; ` +
      `${describe(blocked)} completed, but neither it nor any operation that could go before it fits that value` +
      (cands.length > 0 ? ` (candidates: ${cands.slice(0, 6).map(describe).join("; ")}${cands.length > 6 ? "; …" : ""})` : ""),
    operations: cands.slice(0, 20),
    linearized: lin.slice(-10),
    state: values[b.state] ?? null,
    blocked,
  });
}

/** One value's operations: its write and the completed reads that returned it (Gibbons & Korach's cluster). */
interface Cluster {
  readonly value: RegisterValue;
  /** The write, with the completion the test uses (an unknown write's bound); undefined for the initial value. */
  readonly write?: { op: Operation; end: number };
  readonly reads: Operation[];
  /** Earliest completion and latest invocation over the cluster, and the operations they come from. */
  f: number;
  fOp?: Operation;
  s: number;
  sOp?: Operation;
}

/**
 * Gibbons & Korach's zone test ("Testing shared memories", SIAM J. Comput. 1997; as restated
 * by Golab, Li and Shah, "Analyzing consistency properties for fun and profit", PODC 2011):
 * exact and O(n log n) for read/write histories where every value is written at most once.
 * For each value, f = the earliest completion and s = the latest invocation among its write and
 * its reads. When f < s the register must hold the value at least from f to s: a forward zone
 * (f, s). Otherwise all of them overlap in [s, f]: a backward zone, placeable at any instant
 * there. Linearizable iff no read completes before its write is invoked, no two forward zones
 * overlap, and no backward zone lies strictly inside a forward one. Equal times overlap (module
 * doc), so zones that only touch do not clash. The initial value is written at -∞.
 *
 * Returns undefined where it does not apply (a cas, a value written twice or equal to the
 * initial value, an unknown write left unbounded): the search decides those.
 */
function zoneTest(ops: readonly { op: Operation; end: number }[], initial: RegisterValue): { ok: true } | { ok: false; explanation: Explanation } | undefined {
  const clusters = new Map<RegisterValue, Cluster>();
  const cluster = (v: RegisterValue): Cluster => {
    let c = clusters.get(v);
    if (!c) clusters.set(v, (c = { value: v, reads: [], f: Infinity, s: -Infinity }));
    return c;
  };
  for (const { op, end } of ops) {
    if (op.f === "cas") return undefined;
    if (op.f === "write") {
      const c = cluster(op.value as string);
      if (c.write || op.value === initial || end === Infinity) return undefined;
      (c as { write?: { op: Operation; end: number } }).write = { op, end };
    }
  }
  const init = cluster(initial);
  if (init.write) return undefined;
  init.f = -Infinity;
  init.s = -Infinity;
  const seen = (c: Cluster, op: Operation, start: number, end: number) => {
    if (end < c.f) {
      c.f = end;
      c.fOp = op;
    }
    if (start > c.s) {
      c.s = start;
      c.sOp = op;
    }
  };
  for (const { op, end } of ops) {
    if (op.f === "write") seen(clusters.get(op.value as string)!, op, op.invoke, end);
  }
  for (const { op } of ops) {
    if (op.f !== "read") continue;
    const c = clusters.get(op.value as RegisterValue);
    // prepare() already refused reads of values never written.
    if (!c) return undefined;
    if (c.write && op.complete! < c.write.op.invoke) {
      return {
        ok: false,
        explanation: {
          summary: `${describe(op)} completed before the write of ${JSON.stringify(op.value)} was invoked: ${describe(c.write.op)}`,
          operations: [op, c.write.op],
          blocked: op,
        },
      };
    }
    c.reads.push(op);
    seen(c, op, op.invoke, op.complete!);
  }
  const forward = [...clusters.values()].filter((c) => c.f < c.s).sort((a, b) => a.f - b.f);
  const span = (c: Cluster) =>
    `the register must hold ${JSON.stringify(c.value)} from ${c.f === -Infinity ? "the start" : c.f} (${c.fOp ? describe(c.fOp) : "its initial value"}) until ${c.s} (${describe(c.sOp!)})`;
  const involved = (...cs: Cluster[]) =>
    cs
      .flatMap((c) => [c.fOp, c.sOp])
      .filter((o): o is Operation => o !== undefined)
      .sort((a, b) => a.invoke - b.invoke);
  let widest: Cluster | undefined;
  for (const c of forward) {
    if (widest && c.f < widest.s) {
      // The later-established value cannot be read over the earlier one's span, nor the reverse.
      return {
        ok: false,
        explanation: { summary: `${span(widest)}, and ${span(c)}: the two spans overlap`, operations: involved(widest, c), blocked: widest.s > c.s ? widest.sOp! : c.sOp! },
      };
    }
    if (!widest || c.s > widest.s) widest = c;
  }
  // Forward zones are disjoint now: a backward zone [s, f] can only lie inside the last one starting before s.
  for (const c of clusters.values()) {
    if (c.f < c.s || c.s === -Infinity) continue;
    let lo = 0;
    let hi = forward.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (forward[mid]!.f < c.s) lo = mid + 1;
      else hi = mid;
    }
    const z = forward[lo - 1];
    if (z && c.f < z.s) {
      const what = c.write ? `${describe(c.write.op)}${c.reads.length ? ` and its ${c.reads.length} read(s)` : ""}` : `the read(s) of the initial value`;
      return {
        ok: false,
        explanation: { summary: `${span(z)}, but ${what} lie entirely within that span`, operations: [...involved(z), ...(c.write ? [c.write.op] : []), ...c.reads.slice(0, 3)], blocked: z.sOp! },
      };
    }
  }
  return { ok: true };
}

/** One line for an operation, e.g. `#12 n1/etcd3 read → "v7" [1700000000123, 1700000000131]`. */
export function describe(op: Operation): string {
  const result =
    op.f === "write"
      ? `write ${JSON.stringify(op.value)}`
      : op.f === "read"
        ? `read → ${op.outcome === "ok" ? JSON.stringify(op.value) : op.outcome}`
        : `cas ${JSON.stringify(op.expect)} → ${JSON.stringify(op.value)}${op.outcome === "ok" ? (op.swapped ? " swapped" : " not swapped") : ""}`;
  const status = op.outcome === "ok" ? "" : ` (${op.outcome})`;
  return `#${op.id} ${op.process} ${result}${status} [${op.invoke}, ${op.complete ?? "…"}]`;
}
