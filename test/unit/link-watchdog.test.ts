import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { LinkWatchdog, type LinkWatchTiming } from "../../src/node/link-watchdog.ts";

const T: LinkWatchTiming = { probeEveryMs: 1000, timeoutMs: 500, repeerAfterMs: 9000, repeerEveryMs: 60_000, restartAfterMs: 24_000, restartEveryMs: 300_000 };
const round = (entries: Record<string, boolean>) => new Map(Object.entries(entries));

describe("LinkWatchdog: a peer linked but unreachable over the mesh", () => {
  it("is re-peered once it has been unreachable for repeerAfterMs, then not again within repeerEveryMs", () => {
    const w = new LinkWatchdog(T);
    assert.deepEqual(w.judge(round({ a: false, b: true }), 0), { repeer: [], restart: false });
    assert.deepEqual(w.judge(round({ a: false, b: true }), 8999), { repeer: [], restart: false });
    assert.deepEqual(w.judge(round({ a: false, b: true }), 9000), { repeer: ["a"], restart: false });
    assert.deepEqual(w.judge(round({ a: false, b: true }), 30_000), { repeer: [], restart: false }, "not again within a minute");
    assert.deepEqual(w.judge(round({ a: false, b: true }), 69_000), { repeer: ["a"], restart: false });
  });

  it("one answered probe clears it; a peer whose link went down is forgotten (dialling it is another loop's job)", () => {
    const w = new LinkWatchdog(T);
    w.judge(round({ a: false }), 0);
    w.judge(round({ a: true }), 5000);
    assert.deepEqual(w.judge(round({ a: false }), 13_000), { repeer: [], restart: false }, "counted from 13 s, not 0");
    w.judge(round({}), 14_000);
    assert.deepEqual(w.judge(round({ a: false }), 15_000), { repeer: [], restart: false });
    assert.deepEqual(w.judge(round({ a: false }), 24_000), { repeer: ["a"], restart: false });
  });

  it("restarts yggdrasil when no linked peer at all has answered for restartAfterMs, at most once per restartEveryMs", () => {
    const w = new LinkWatchdog(T);
    w.judge(round({ a: false, b: false }), 0);
    assert.deepEqual(w.judge(round({ a: false, b: false }), 9000), { repeer: ["a", "b"], restart: false });
    assert.deepEqual(w.judge(round({ a: false, b: false }), 24_000), { repeer: [], restart: true });
    // Still broken after the restart: re-peering again in time, but no second restart within 5 min.
    w.judge(round({ a: false, b: false }), 25_000);
    assert.equal(w.judge(round({ a: false, b: false }), 60_000).restart, false);
    assert.equal(w.judge(round({ a: false, b: false }), 325_000).restart, true);
  });

  it("never restarts while some linked peer answers, nor with no links at all", () => {
    const w = new LinkWatchdog(T);
    for (let t = 0; t <= 120_000; t += 3000) assert.equal(w.judge(round({ a: false, b: true }), t).restart, false);
    const lone = new LinkWatchdog(T);
    for (let t = 0; t <= 120_000; t += 3000) assert.deepEqual(lone.judge(round({}), t), { repeer: [], restart: false });
  });
});
