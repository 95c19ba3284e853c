import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { waitUntil } from "../../src/util/wait.ts";

describe("waitUntil", () => {
  it("returns the first value the condition gives, checking at once and then every interval", async () => {
    let checks = 0;
    const t0 = Date.now();
    const got = await waitUntil(() => (++checks === 3 ? { ready: true } : false), { timeoutMs: 5000, intervalMs: 20 });
    assert.deepEqual(got, { ready: true });
    assert.equal(checks, 3);
    assert.ok(Date.now() - t0 < 1000);
  });

  it("gives undefined once the time is up, having checked about timeout / interval times", async () => {
    let checks = 0;
    const t0 = Date.now();
    const got = await waitUntil(async () => (checks++, undefined), { timeoutMs: 200, intervalMs: 50 });
    const took = Date.now() - t0;
    assert.equal(got, undefined);
    assert.ok(took >= 190 && took < 1000, `took ${took} ms`);
    assert.ok(checks >= 3 && checks <= 5, `${checks} checks`);
  });

  it("stops after timeout / interval + 1 checks even when the clock stands still", async (t) => {
    t.mock.method(Date, "now", () => 1_000_000);
    let checks = 0;
    assert.equal(await waitUntil(() => (checks++, null), { timeoutMs: 100, intervalMs: 10 }), undefined);
    assert.equal(checks, 11);
  });

  it("passes a failing check's error on", async () => {
    await assert.rejects(waitUntil(() => { throw new Error("unreadable status"); }, { timeoutMs: 100, intervalMs: 10 }), /unreadable status/);
  });
});
