import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { configMismatches, dbVerdict, expectedValues, type DbSample, type SoakWrite } from "../../bench/lib/soak-checks.ts";

const w = (key: string, value: string | null, outcome: SoakWrite["outcome"] = "ok"): SoakWrite => ({ key, value, outcome });

describe("expectedValues (bench/soak.ts)", () => {
  it("is the last acknowledged write of each key; a delete leaves it absent", () => {
    const e = expectedValues([w("a", "1"), w("b", "x"), w("a", "2"), w("b", null)]);
    assert.deepEqual(e.get("a"), { last: "2", also: [] });
    assert.deepEqual(e.get("b"), { last: null, also: [] });
  });
  it("keeps a write of unknown outcome possible until the next acknowledged one", () => {
    const e = expectedValues([w("a", "1"), w("a", "2", "unknown")]);
    assert.deepEqual(e.get("a"), { last: "1", also: ["2"] });
    assert.deepEqual(expectedValues([w("a", "1"), w("a", "2", "unknown"), w("a", "3")]).get("a"), { last: "3", also: [] });
  });
  it("a queued write may be the final value until the next acknowledged one (pushed over it, it is a lost write)", () => {
    assert.deepEqual(expectedValues([w("a", "1"), w("a", "q", "queued")]).get("a"), { last: "1", also: ["q"] });
    assert.deepEqual(expectedValues([w("a", "1"), w("a", "q", "queued"), w("a", "3")]).get("a"), { last: "3", also: [] });
  });
  it("a key only ever written with unknown outcome may be absent", () => {
    assert.deepEqual(expectedValues([w("a", "1", "unknown")]).get("a"), { last: null, also: ["1"] });
  });
});

describe("configMismatches (bench/soak.ts)", () => {
  const expected = expectedValues([w("a", "1"), w("b", "2"), w("b", null), w("c", "3"), w("c", "4", "unknown")]);
  const reads = (m: Record<string, Record<string, string | null>>) => new Map(Object.entries(m).map(([k, v]) => [k, new Map(Object.entries(v))]));
  it("accepts the last acknowledged value, absence after a delete, an unknown write's value", () => {
    assert.deepEqual(configMismatches(expected, reads({ n0: { a: "1", c: "3" }, n1: { a: "1", b: null, c: "4" } })), []);
  });
  it("names a member that lost a write, or still holds a deleted key", () => {
    const m = configMismatches(expected, reads({ n0: { a: "0", c: "3" }, n1: { a: "1", b: "2", c: "3" } }));
    assert.deepEqual(
      m.map((x) => [x.member, x.key, x.read]),
      [
        ["n0", "a", "0"],
        ["n1", "b", "2"],
      ],
    );
  });
  it("a key a member has no reading of is not compared", () => {
    assert.deepEqual(configMismatches(expected, reads({ n0: { c: "3" } })), []);
  });
});

describe("dbVerdict (bench/soak.ts)", () => {
  const series = (inUse: number[], keys: (number | null)[]): DbSample[] => inUse.map((b, t) => ({ t, inUseBytes: b, keys: keys[t] ?? null }));
  it("bounded: the last quarter's in-use size within 1.5× the second quarter's, keys no more than at the start", () => {
    // 8 minutes: second quarter t ∈ [2, 4), last quarter t ≥ 6.
    const v = dbVerdict(series([10, 20, 30, 40, 42, 44, 50, 55, 58], [100, null, null, null, null, null, null, null, 100]), 8);
    assert.equal(v.bounded, true, v.why);
    assert.equal(v.secondQuarterMaxBytes, 40);
    assert.equal(v.lastQuarterMaxBytes, 58);
    assert.equal(v.ratio, 1.45);
    assert.equal(v.keysAtEnd, 100);
  });
  it("not bounded when the size keeps growing", () => {
    const v = dbVerdict(series([10, 20, 30, 40, 50, 60, 70, 80, 90], [100, null, null, null, null, null, null, null, 100]), 8);
    assert.equal(v.bounded, false);
    assert.match(v.why, /grew 2\.25×/);
  });
  it("not bounded when keys pile up", () => {
    const v = dbVerdict(series([10, 10, 10, 10, 10, 10, 10, 10, 10], [100, null, null, null, null, null, null, null, 101]), 8);
    assert.equal(v.bounded, false);
    assert.match(v.why, /101 keys at the end/);
  });
  it("not bounded when a quarter has no reading", () => {
    const v = dbVerdict([{ t: 0, inUseBytes: 1, keys: 1 }, { t: 8, inUseBytes: 1, keys: 1 }], 8);
    assert.equal(v.bounded, false);
    assert.match(v.why, /no in-use reading in the second quarter/);
  });
  it("takes readings after the churn's end as the last quarter's", () => {
    const v = dbVerdict([{ t: 2, inUseBytes: 10, keys: 5 }, { t: 9.5, inUseBytes: 16, keys: 5 }], 8);
    assert.equal(v.lastQuarterMaxBytes, 16);
    assert.equal(v.bounded, false);
  });
});
