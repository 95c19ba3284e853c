import assert from "node:assert/strict";
import { test } from "node:test";
import { fractionWithin, percentile, summarize } from "../../bench/lib/latency.ts";

test("percentile is nearest-rank: the smallest sample with p % at or below it", () => {
  assert.equal(percentile([4, 1, 3, 2], 50), 2);
  assert.equal(percentile([4, 1, 3, 2], 100), 4);
  assert.equal(percentile([7], 1), 7);
  const thousand = Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1000..1, unsorted
  assert.equal(percentile(thousand, 99), 990);
  assert.equal(percentile(thousand, 50), 500);
  assert.equal(percentile([], 50), undefined);
  assert.throws(() => percentile([1], 0), RangeError);
  assert.throws(() => percentile([1], 101), RangeError);
});

test("the share within a bound counts samples that never arrived as late", () => {
  assert.equal(fractionWithin([100, 999, 1000, 1001], 1000), 0.75);
  assert.equal(fractionWithin([100, 200], 1000, 4), 0.5);
  assert.equal(fractionWithin([], 1000, 0), 1);
});

test("summarize reports missing samples and does not overflow the stack on large inputs", () => {
  const xs = Array.from({ length: 200_000 }, (_, i) => i % 2000);
  const s = summarize(xs, 200_010);
  assert.equal(s.missing, 10);
  assert.equal(s.maxMs, 1999);
  assert.equal(s.p50Ms, 999);
  assert.equal(s.within1s, 0.5005); // 0..1000 of each 2000, of 200 010 expected
  assert.deepEqual(summarize([], 3), { n: 0, missing: 3, p50Ms: null, p99Ms: null, maxMs: null, within1s: 0 });
});
