/**
 * The register linearizability checker of the chaos run (test/chaos/linearizability.ts): known
 * good and known bad histories, operations that never completed, agreement with a brute-force
 * search straight from the definition on thousands of random small histories, and long
 * histories decided within seconds.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { checkHistory, checkKey, type Operation, type RegisterValue } from "../chaos/linearizability.ts";
import { mulberry32 } from "../chaos/prng.ts";

let nextId = 0;
type Spec = Omit<Operation, "id" | "key" | "process" | "outcome"> & { key?: string; process?: string; outcome?: Operation["outcome"] };
const op = (s: Spec): Operation => ({ id: nextId++, key: "k", process: "p", outcome: "ok", ...s });
const w = (value: string, invoke: number, complete?: number, extra: Partial<Spec> = {}) =>
  op({ f: "write", value, invoke, ...(complete === undefined ? { outcome: "unknown" } : { complete }), ...extra });
const r = (value: RegisterValue, invoke: number, complete: number, extra: Partial<Spec> = {}) => op({ f: "read", value, invoke, complete, ...extra });
const cas = (expect: RegisterValue, value: string, swapped: boolean | undefined, invoke: number, complete?: number) =>
  op({ f: "cas", expect, value, invoke, ...(swapped === undefined ? { outcome: "unknown" } : { swapped, complete: complete! }) });

/** The verdict, the same whichever method decides (the zone test where it applies, and the search). */
const verdict = (ops: Operation[]) => {
  const auto = checkKey("k", ops);
  const search = checkKey("k", ops, { method: "search" });
  assert.equal(auto.result, search.result, `the zone test and the search disagree on ${JSON.stringify(ops)}`);
  return auto.result;
};
const good = (ops: Operation[], why: string) => assert.equal(verdict(ops), "linearizable", why);
const bad = (ops: Operation[], why: string) => assert.equal(verdict(ops), "non-linearizable", why);

describe("linearizability checker: known histories", () => {
  it("empty and sequential histories are linearizable", () => {
    good([], "empty");
    good([r(null, 0, 1)], "read of the absent key");
    good([w("a", 0, 1), r("a", 2, 3), w("b", 4, 5), r("b", 6, 7)], "sequential");
  });

  it("a stale read after a completed write is not", () => {
    bad([w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)], "read a after b completed");
    bad([w("a", 0, 1), r(null, 2, 3)], "read absent after a write completed: the write was lost");
  });

  it("a read of a value never written is not, and says so", () => {
    const v = checkKey("k", [w("a", 0, 1), r("zz", 2, 3)]);
    assert.equal(v.result, "non-linearizable");
    assert.match(v.explanation!.summary, /"zz", a value no operation on k wrote/);
  });

  it("a read of a value whose write certainly failed is not", () => {
    bad([w("a", 0, 1, { outcome: "fail" }), r("a", 2, 3)], "failed write observed");
    good([w("a", 0, 1, { outcome: "fail" }), r(null, 2, 3)], "failed write not observed");
  });

  it("a read may see either side of a write it overlaps", () => {
    good([w("a", 0, 1), w("b", 2, 6), r("a", 3, 4)], "old value while the write runs");
    good([w("a", 0, 1), w("b", 2, 6), r("b", 3, 4)], "new value while the write runs");
    good([w("a", 0, 10), w("b", 0, 10), r("b", 11, 12), r("b", 13, 14)], "concurrent writes, b last");
    good([w("a", 0, 10), w("b", 0, 10), r("a", 11, 12), r("a", 13, 14)], "concurrent writes, a last");
  });

  it("reordering: once a new value was read, an older one cannot come back", () => {
    // Two reads overlapping one write: the first completed read saw b, a later one sees a.
    bad([w("a", 0, 1), w("b", 2, 20), r("b", 3, 4), r("a", 5, 6)], "new-old inversion");
    bad([w("a", 0, 1), w("b", 2, 3), w("c", 4, 5), r("c", 6, 7), r("b", 8, 9)], "b after c");
    bad([w("a", 0, 10), w("b", 0, 10), r("b", 11, 12), r("a", 13, 14), r("b", 15, 16)], "flip-flop between concurrent writes");
  });

  it("a read that completed before its value was written is not", () => {
    bad([r("a", 0, 1), w("a", 2, 3)], "read from the future");
    good([r("a", 0, 5), w("a", 2, 3)], "overlapping: fine");
  });

  it("equal times overlap: a write that completes at the instant a read starts may be ordered either way", () => {
    good([w("a", 0, 1), w("b", 2, 5), r("a", 5, 6)], "completion and invocation at the same ms");
    bad([w("a", 0, 1), w("b", 2, 5), r("a", 6, 7)], "one ms later they do not");
  });

  it("a write that never completed may take effect at any later time, or never", () => {
    good([w("a", 0, 1), w("b", 2), r("a", 3, 4), r("a", 10, 11)], "never took effect");
    good([w("a", 0, 1), w("b", 2), r("a", 3, 4), r("b", 10, 11)], "took effect late");
    good([w("a", 0, 1), w("b", 2), r("b", 3, 4), r("b", 10, 11)], "took effect early");
    bad([w("a", 0, 1), w("b", 2), r("b", 3, 4), r("a", 10, 11)], "took effect, then undone");
    bad([w("b", 2), r("b", 0, 1)], "seen before it was invoked");
  });

  it("a write that never completed takes effect at most once", () => {
    // b observed, then overwritten by c: b cannot come back.
    bad([w("b", 0), r("b", 1, 2), w("c", 3, 4), r("c", 5, 6), r("b", 7, 8)], "unknown write applied twice");
    good([w("b", 0), r("b", 1, 2), w("c", 3, 4), r("c", 5, 6)], "applied once");
    good([w("b", 0), w("c", 3, 4), r("c", 5, 6), r("b", 7, 8)], "applied late, after c");
  });

  it("a value written twice: seeing it does not tell which write took effect", () => {
    // "a" read at 2–3 is the completed write's; the unknown second write of "a" may land after b.
    good([w("a", 0, 1), r("a", 2, 3), w("a", 5), w("b", 6, 7), r("a", 8, 9)], "second write of a lands late");
    bad([w("a", 0, 1), r("a", 2, 3), w("b", 6, 7), r("a", 8, 9)], "without it, a cannot come back");
  });

  it("the register's value counts, not only which operations were placed", () => {
    // Both orders of the two concurrent writes place the same set; only b-then-a explains the reads.
    good([w("a", 0, 10), w("b", 0, 10), r("a", 11, 12)], "a last");
    good([w("b", 0, 10), w("a", 0, 10), r("b", 11, 12)], "b last");
    good([w("a", 0, 10), w("b", 0, 10), w("c", 0, 10), r("a", 11, 12)], "a last of three");
  });

  it("many writes that never completed, none observed, do not stop a verdict", () => {
    const ops: Operation[] = [w("a", 0, 1)];
    for (let i = 0; i < 200; i++) ops.push(w(`lost-${i}`, 2 + i));
    ops.push(r("a", 300, 301), w("z", 302, 303), r("z", 304, 305));
    good(ops, "all timed out");
    bad([...ops, r("a", 306, 307)], "and one stale read");
  });

  it("reads without an answer and failed reads say nothing", () => {
    good([w("a", 0, 1), op({ f: "read", value: "zz", invoke: 2, outcome: "fail" }), op({ f: "read", invoke: 2, outcome: "unknown" }), r("a", 3, 4)], "ignored");
  });

  it("compare-and-set: swaps only on a match, fails only on a mismatch", () => {
    good([w("a", 0, 1), cas("a", "b", true, 2, 3), r("b", 4, 5)], "swapped");
    good([w("a", 0, 1), cas("x", "b", false, 2, 3), r("a", 4, 5)], "did not swap");
    bad([w("a", 0, 1), cas("x", "b", true, 2, 3)], "swapped on a mismatch");
    bad([w("a", 0, 1), cas("a", "b", false, 2, 3)], "failed on a match");
    good([cas(null, "a", true, 0, 1), r("a", 2, 3)], "create if absent");
    bad([w("a", 0, 1), cas(null, "b", true, 2, 3)], "create when present");
    // An unknown cas: took effect (swap) or not.
    good([w("a", 0, 1), cas("a", "b", undefined, 2), r("b", 3, 4)], "unknown cas swapped");
    good([w("a", 0, 1), cas("a", "b", undefined, 2), r("a", 3, 4)], "unknown cas not (yet)");
    bad([w("a", 0, 1), cas("x", "b", undefined, 2), r("b", 3, 4)], "unknown cas cannot swap on a mismatch");
    // A chain of unknown cas observed at its end needs every link.
    good([w("a", 0, 1), cas("a", "b", undefined, 2), cas("b", "c", undefined, 2), r("c", 5, 6)], "chain");
    bad([w("a", 0, 1), cas("a", "b", undefined, 2), cas("b", "c", undefined, 2), r("c", 5, 6), r("b", 7, 8)], "chain undone");
  });

  it("a failed cas keeps the writes it may depend on", () => {
    // The unknown write of "x" is the only way the cas expecting "a" can have failed after "a" was read.
    good([w("a", 0, 1), w("x", 2), r("a", 3, 4), cas("a", "b", false, 5, 6)], "unknown write explains the failed cas");
    bad([w("a", 0, 1), r("a", 3, 4), cas("a", "b", false, 5, 6), r("a", 7, 8)], "nothing explains it");
  });

  it("an initial value can be given", () => {
    assert.equal(checkKey("k", [r("init", 0, 1)], { initial: "init" }).result, "linearizable");
    assert.equal(checkKey("k", [r(null, 0, 1)], { initial: "init" }).result, "non-linearizable");
  });

  it("keys are checked on their own", () => {
    const ops = [w("a", 0, 1, { key: "x" }), r("a", 2, 3, { key: "x" }), w("a", 0, 1, { key: "y" }), w("b", 2, 3, { key: "y" }), r("a", 4, 5, { key: "y" })];
    const v = checkHistory(ops);
    assert.deepEqual(
      v.map((x) => [x.key, x.result]),
      [
        ["x", "linearizable"],
        ["y", "non-linearizable"],
      ],
    );
  });

  it("the explanation names the operation that could not be placed", () => {
    const stale = r("a", 4, 5, { process: "n3/etcd3" });
    const v = checkKey("k", [w("a", 0, 1), w("b", 2, 3), stale], { method: "search" });
    assert.equal(v.method, "search");
    assert.equal(v.explanation?.blocked?.id, stale.id);
    assert.equal(v.explanation?.state, "b");
    assert.match(v.explanation!.summary, /n3\/etcd3 read → "a"/);
  });

  it("the zone test's explanation names the clashing spans and the stale read", () => {
    const b = w("b", 2, 3);
    const stale = r("a", 4, 5, { process: "n3/etcd3" });
    const v = checkKey("k", [w("a", 0, 1), b, stale]);
    assert.equal(v.method, "zones");
    assert.equal(v.explanation?.blocked?.id, stale.id);
    assert.ok(v.explanation?.operations.some((o) => o.id === b.id));
    assert.match(v.explanation!.summary, /must hold "a" from 1 .* until 4 .*n3\/etcd3 read → "a".*write "b".* lie entirely within that span/);
    const inversion = checkKey("k", [w("a", 0, 10), w("b", 0, 10), r("b", 11, 12), r("a", 13, 14), r("b", 15, 16)]);
    assert.match(inversion.explanation!.summary, /the two spans overlap/);
    const early = checkKey("k", [r("a", 0, 1), w("a", 2, 3)]);
    assert.match(early.explanation!.summary, /completed before the write of "a" was invoked/);
  });

  it("the zone test decides unique-value read/write histories; cas and repeated values go to the search", () => {
    assert.equal(checkKey("k", [w("a", 0, 1), r("a", 2, 3)]).method, "zones");
    assert.equal(checkKey("k", [w("a", 0, 1), cas("a", "b", true, 2, 3)]).method, "search");
    assert.equal(checkKey("k", [w("a", 0, 1), w("a", 2, 3)]).method, "search");
    assert.equal(checkKey("k", [w("a", 0, 1), r("a", 2, 3)], { method: "search" }).method, "search");
  });

  it("refuses malformed operations", () => {
    assert.throws(() => checkKey("k", [op({ f: "read", value: "a", invoke: 5 })]), /completed but no completion time/);
    assert.throws(() => checkKey("k", [r("a", 5, 4)]), /before it was invoked/);
    assert.throws(() => checkKey("k", [w("a", 0, 1, { key: "other" })]), /is on other, not k/);
  });
});

// ---------------------------------------------------------------- brute force

/** Linearizability straight from the definition: try every order (small histories only). */
function bruteForce(ops: readonly Operation[], initial: RegisterValue = null): boolean {
  const live = ops.filter((o) => o.outcome !== "fail" && !(o.f === "read" && o.outcome !== "ok"));
  const must = live.filter((o) => o.outcome === "ok").length;
  const placed = new Array<boolean>(live.length).fill(false);
  const apply = (s: RegisterValue, o: Operation): RegisterValue | undefined => {
    if (o.f === "write") return o.value as string;
    if (o.f === "read") return o.value === s ? s : undefined;
    const match = o.expect === s;
    if (o.outcome === "unknown") return match ? (o.value as string) : s;
    if (o.swapped) return match ? (o.value as string) : undefined;
    return match ? undefined : s;
  };
  const go = (s: RegisterValue, done: number): boolean => {
    if (done === must) return true; // the rest are unknown: they never took effect
    for (let i = 0; i < live.length; i++) {
      if (placed[i]) continue;
      const o = live[i]!;
      // Every completed operation that ended before o began must come first.
      if (live.some((a, j) => !placed[j] && a.outcome === "ok" && a.complete! < o.invoke)) continue;
      const after = apply(s, o);
      if (after === undefined) continue;
      placed[i] = true;
      const ok = go(after, done + (o.outcome === "ok" ? 1 : 0));
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(initial, 0);
}

/**
 * A history of a real register: each operation takes effect at a random point of its interval
 * (unknown ones maybe never), so it is linearizable; then, half the time, one answer is changed,
 * which may or may not break it. Times from a small range, so ties are common.
 */
function randomHistory(rand: () => number, size: number, withCas: boolean, unique = false): Operation[] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const values = ["a", "b", "c", "d"];
  type Draft = { f: "write" | "read" | "cas"; invoke: number; complete: number; at: number; outcome: Operation["outcome"]; value?: RegisterValue; expect?: RegisterValue };
  const drafts: Draft[] = [];
  let written = 0;
  for (let i = 0; i < size; i++) {
    const invoke = Math.floor(rand() * 12);
    const complete = invoke + Math.floor(rand() * 6);
    const at = invoke + rand() * (complete - invoke);
    const f = withCas ? pick(["write", "read", "read", "cas"] as const) : pick(["write", "read", "read"] as const);
    const outcome = rand() < 0.2 ? "unknown" : rand() < 0.08 ? "fail" : "ok";
    // Mostly unique values, sometimes a repeat (the checker must not rely on uniqueness).
    const value = f === "read" ? undefined : unique || rand() < 0.85 ? `v${written++}` : pick(values);
    drafts.push({ f, invoke, complete, at, outcome, ...(value !== undefined ? { value } : {}), ...(f === "cas" ? { expect: rand() < 0.3 ? null : pick([...values, "v0", "v1"]) } : {}) });
  }
  // Apply in order of effect; unknown ones take effect (late) or not; failed ones never.
  let state: RegisterValue = null;
  const effective = drafts
    .map((d, i) => ({ d, i, at: d.outcome === "unknown" ? (rand() < 0.5 ? d.invoke + rand() * 20 : Infinity) : d.at }))
    .filter((x) => x.d.outcome !== "fail" && x.at !== Infinity)
    .sort((x, y) => x.at - y.at);
  const results = new Map<number, { value?: RegisterValue; swapped?: boolean }>();
  for (const { d, i } of effective) {
    if (d.f === "write") state = d.value as string;
    else if (d.f === "read") results.set(i, { value: state });
    else {
      const swapped = state === d.expect;
      if (swapped) state = d.value as string;
      results.set(i, { swapped });
    }
  }
  const ops: Operation[] = drafts.map((d, i) => {
    const res = results.get(i);
    const base = { id: i, key: "k", process: `p${i % 3}`, f: d.f, invoke: d.invoke };
    if (d.outcome !== "ok") return { ...base, outcome: d.outcome, ...(d.f !== "read" ? { value: d.value } : {}), ...(d.f === "cas" ? { expect: d.expect } : {}) } as Operation;
    if (d.f === "read") return { ...base, outcome: "ok", complete: d.complete, value: res?.value ?? null };
    if (d.f === "cas") return { ...base, outcome: "ok", complete: d.complete, value: d.value, expect: d.expect, swapped: res?.swapped ?? false } as Operation;
    return { ...base, outcome: "ok", complete: d.complete, value: d.value } as Operation;
  });
  if (rand() < 0.5) {
    const idx = ops.map((o, i) => (o.outcome === "ok" && o.f !== "write" ? i : -1)).filter((i) => i >= 0);
    if (idx.length > 0) {
      const i = pick(idx);
      const o = ops[i]!;
      ops[i] = o.f === "read" ? { ...o, value: pick(unique ? [null, "v0", "v1", "v2", "v3"] : [null, ...values, "v0", "v1", "v2"]) } : { ...o, swapped: !o.swapped };
    }
  }
  return ops;
}

describe("linearizability checker: agreement with brute force", () => {
  it("random small histories of unique values: the zone test decides, with the same verdict as trying every order", () => {
    const rand = mulberry32(21);
    let linearizable = 0;
    let not = 0;
    for (let n = 0; n < 4000; n++) {
      // Only unique values: every written value fresh.
      const ops = randomHistory(rand, 2 + Math.floor(rand() * 7), false, true);
      const expected = bruteForce(ops) ? "linearizable" : "non-linearizable";
      const v = checkKey("k", ops);
      assert.equal(v.method, "zones", JSON.stringify(ops));
      assert.equal(v.result, expected, `history ${n}:\n${JSON.stringify(ops, null, 1)}`);
      if (expected === "linearizable") linearizable++;
      else not++;
    }
    assert.ok(linearizable > 800 && not > 800, `${linearizable} linearizable, ${not} not`);
  });

  for (const withCas of [false, true]) {
    it(`random small histories${withCas ? " with compare-and-set" : ""}: same verdict as trying every order`, () => {
      const rand = mulberry32(withCas ? 7 : 3);
      let linearizable = 0;
      let not = 0;
      for (let n = 0; n < 3000; n++) {
        const ops = randomHistory(rand, 2 + Math.floor(rand() * 6), withCas);
        const expected = bruteForce(ops) ? "linearizable" : "non-linearizable";
        assert.equal(checkKey("k", ops).result, expected, `history ${n}:\n${JSON.stringify(ops, null, 1)}`);
        assert.equal(checkKey("k", ops, { method: "search" }).result, expected, `history ${n} (search):\n${JSON.stringify(ops, null, 1)}`);
        if (expected === "linearizable") linearizable++;
        else not++;
      }
      // Both verdicts well represented, or the comparison proves little.
      assert.ok(linearizable > 600 && not > 600, `${linearizable} linearizable, ${not} not`);
    });
  }
});

// ---------------------------------------------------------------- long histories

/**
 * A long history of a real register: `clients` clients, each one operation at a time, effect at
 * a random point in the interval, some answers lost (unknown) and some reads failed.
 */
function longHistory(rand: () => number, size: number, clients: number, keys = 1): Operation[] {
  const out: Operation[] = [];
  const pending: { op: Operation; at: number; effect: boolean }[] = [];
  const clock = new Array<number>(clients).fill(0);
  for (let i = 0; i < size; i++) {
    const c = i % clients;
    const invoke = clock[c]! + Math.floor(rand() * 3);
    const complete = invoke + 1 + Math.floor(rand() * 8);
    clock[c] = complete + 1;
    const key = `k${Math.floor(rand() * keys)}`;
    const f = rand() < 0.5 ? "read" : "write";
    const lost = f === "write" && rand() < 0.05;
    const op: Operation =
      f === "write"
        ? { id: i, key, process: `c${c}`, f, value: `v${i}`, invoke, ...(lost ? { outcome: "unknown" } : { outcome: "ok", complete }) }
        : { id: i, key, process: `c${c}`, f, invoke, outcome: "ok", complete, value: null };
    // An unknown write takes effect within its interval half the time, else never.
    pending.push({ op, at: invoke + rand() * (complete - invoke), effect: !lost || rand() < 0.5 });
  }
  const state = new Map<string, RegisterValue>();
  for (const p of pending.sort((a, b) => a.at - b.at)) {
    if (!p.effect) continue;
    if (p.op.f === "write") state.set(p.op.key, p.op.value as string);
    else (p.op as { value: RegisterValue }).value = state.get(p.op.key) ?? null;
  }
  for (const p of pending) out.push(p.op);
  return out;
}

describe("linearizability checker: long histories", () => {
  // How fast is measured in steps, not milliseconds: a timed assertion fails on a loaded machine.
  it("2000 operations of 10 concurrent clients, some timed out: linearizable, decided by the zone test, or by a search of at most 100 000 steps", () => {
    const ops = longHistory(mulberry32(11), 2000, 10);
    for (const method of ["auto", "search"] as const) {
      const v = checkKey("k0", ops, { method });
      assert.equal(v.result, "linearizable", method);
      if (method === "auto") assert.equal(v.method, "zones");
      else assert.ok(v.steps <= 100_000, `search: ${v.steps} steps`);
    }
  });

  it("20 000 operations over 4 keys: linearizable, every key decided by the zone test (no search)", () => {
    const ops = longHistory(mulberry32(12), 20_000, 20, 4);
    const v = checkHistory(ops);
    assert.deepEqual(
      v.map((x) => x.result),
      ["linearizable", "linearizable", "linearizable", "linearizable"],
    );
    assert.deepEqual(
      v.map((x) => x.method),
      ["zones", "zones", "zones", "zones"],
    );
  });

  it("2000 operations and one stale read at the end: non-linearizable, found without exploring every order", () => {
    const ops = longHistory(mulberry32(13), 2000, 10);
    const end = Math.max(...ops.map((o) => o.complete ?? o.invoke)) + 10;
    ops.push({ id: 90_001, key: "k0", process: "late", f: "write", value: "final", invoke: end, complete: end + 1, outcome: "ok" });
    const early = ops.find((o) => o.f === "write" && o.outcome === "ok")!;
    ops.push({ id: 90_002, key: "k0", process: "late", f: "read", value: early.value!, invoke: end + 2, complete: end + 3, outcome: "ok" });
    for (const method of ["auto", "search"] as const) {
      const v = checkKey("k0", ops, { method });
      assert.equal(v.result, "non-linearizable", method);
      assert.equal(v.explanation?.blocked?.id, 90_002, method);
      if (method === "auto") assert.equal(v.method, "zones");
      else assert.ok(v.steps <= 1_000_000, `search: ${v.steps} steps`);
    }
  });

  it("a stale read in the middle of 2000 operations is found and named", () => {
    const ops = longHistory(mulberry32(14), 2000, 10);
    // Somewhere in the middle: two writes in a row by one client, then a read of the first.
    const mid = ops[1000]!.invoke + 50;
    const extra: Operation[] = [
      { id: 80_001, key: "k0", process: "odd", f: "write", value: "m1", invoke: mid, complete: mid + 1, outcome: "ok" },
      { id: 80_002, key: "k0", process: "odd", f: "write", value: "m2", invoke: mid + 2, complete: mid + 3, outcome: "ok" },
      { id: 80_003, key: "k0", process: "odd", f: "read", value: "m1", invoke: mid + 4, complete: mid + 5, outcome: "ok" },
    ];
    for (const method of ["auto", "search"] as const) {
      const v = checkKey("k0", [...ops, ...extra], { method });
      assert.equal(v.result, "non-linearizable", method);
      assert.equal(v.explanation?.blocked?.id, 80_003, method);
    }
  });

  it("a stalled endpoint's pile of concurrent writes, answered at once: decided at once by the zone test", () => {
    // The shape that made the search run out of time in a chaos run: 24 writes pending over a
    // stall, reads of the old value during it, two of the pending writes read right after.
    const ops: Operation[] = [{ id: 0, key: "k", process: "c0", f: "write", value: "old", invoke: 0, complete: 1, outcome: "ok" }];
    for (let i = 1; i <= 24; i++) ops.push({ id: i, key: "k", process: `c${i % 5}`, f: "write", value: `p${i}`, invoke: 10 + i * 10, complete: 2000 + i, outcome: "ok" });
    ops.push({ id: 100, key: "k", process: "c1", f: "read", value: "old", invoke: 150, complete: 1900, outcome: "ok" });
    ops.push({ id: 101, key: "k", process: "c2", f: "read", value: "p3", invoke: 1950, complete: 2030, outcome: "ok" });
    ops.push({ id: 102, key: "k", process: "c3", f: "read", value: "p20", invoke: 1990, complete: 2040, outcome: "ok" });
    ops.push({ id: 103, key: "k", process: "c4", f: "read", value: "p20", invoke: 2050, complete: 2060, outcome: "ok" });
    const v = checkKey("k", ops);
    assert.equal(v.result, "linearizable");
    assert.equal(v.method, "zones");
    // And one more read of p3 afterwards is stale: found just as fast.
    ops.push({ id: 104, key: "k", process: "c0", f: "read", value: "p3", invoke: 2070, complete: 2080, outcome: "ok" });
    assert.equal(checkKey("k", ops).result, "non-linearizable");
  });

  it("the search too: reads of the current value go first, so a pile of pending writes does not explode", () => {
    const pile = (stale: boolean): Operation[] => {
      const ops: Operation[] = [{ id: 0, key: "k", process: "c0", f: "write", value: "old", invoke: 0, complete: 1, outcome: "ok" }];
      for (let i = 1; i <= 14; i++) ops.push({ id: i, key: "k", process: `w${i}`, f: "write", value: `p${i}`, invoke: 10 + i * 10, complete: 2000 + i, outcome: "ok" });
      // Reads of the old value all through the stall, then of the last pending write.
      for (let i = 0; i < 8; i++) ops.push({ id: 100 + i, key: "k", process: `r${i}`, f: "read", value: "old", invoke: 15 + i * 20, complete: 1500 + i, outcome: "ok" });
      ops.push({ id: 200, key: "k", process: "r9", f: "read", value: "p14", invoke: 2100, complete: 2110, outcome: "ok" });
      if (stale) ops.push({ id: 201, key: "k", process: "r9", f: "read", value: "p7", invoke: 2120, complete: 2130, outcome: "ok" });
      return ops;
    };
    for (const stale of [false, true]) {
      // Every order of the 14 pending writes would be 14! ≈ 8.7e10 steps.
      const v = checkKey("k", pile(stale), { method: "search", timeLimitMs: 60_000 });
      assert.equal(v.result, stale ? "non-linearizable" : "linearizable");
      assert.ok(v.steps <= 2_000_000, `${stale ? "stale" : "fine"}: ${v.steps} steps`);
    }
  });

  it("a search past its time limit says unknown, not a verdict", () => {
    // Many overlapping writes, a read of none of the possible last values: exponential without a limit.
    const ops: Operation[] = [];
    for (let i = 0; i < 60; i++) ops.push({ id: i, key: "k", process: `c${i}`, f: "write", value: `v${i}`, invoke: 0, complete: 100, outcome: "ok" });
    for (let i = 0; i < 60; i++) ops.push({ id: 100 + i, key: "k", process: `r${i}`, f: "read", value: `v${i}`, invoke: 0, complete: 100, outcome: "ok" });
    ops.push({ id: 999, key: "k", process: "x", f: "read", value: null, invoke: 101, complete: 102, outcome: "ok" });
    const t = performance.now();
    const v = checkKey("k", ops, { timeLimitMs: 300, method: "search" });
    assert.equal(v.result, "unknown");
    assert.ok(performance.now() - t < 1500);
  });
});
