import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { claimRestart, releaseRestart } from "../../src/consensus/restart-claim.ts";
import { KEYS } from "../../src/consensus/settings.ts";
import { etcdForSuite, haveEtcd } from "../helpers/etcd-single.ts";

/*
 * The cluster's one etcd restart slot: a member restarts its etcd (to take the local endpoint
 * over once promoted, or onto an upgraded program) only while it holds it, so two voters never
 * restart at once. It frees itself when its lease runs out, and the holder gives it back as
 * soon as its etcd answers again.
 */
describe("the etcd restart slot, against a real etcd", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  const etcd = etcdForSuite();

  it("one holder at a time; the others learn who holds it", async () => {
    assert.deepEqual(await claimRestart(etcd.client, "m1"), { claimed: true });
    assert.deepEqual(await claimRestart(etcd.client, "m2"), { claimed: false, holder: "m1" });
    assert.equal(await etcd.client.get(KEYS.restartClaim).string(), "m1");
  });

  it("only its holder gives it back, and then the next member gets it at once", async () => {
    assert.equal(await releaseRestart(etcd.client, "m2"), false, "not m2's to give back");
    assert.equal(await etcd.client.get(KEYS.restartClaim).string(), "m1");
    assert.equal(await releaseRestart(etcd.client, "m1"), true);
    assert.equal(await etcd.client.get(KEYS.restartClaim).string(), null);
    assert.deepEqual(await claimRestart(etcd.client, "m2"), { claimed: true });
  });

  it("it frees itself when its lease runs out, whatever became of its holder", async () => {
    await releaseRestart(etcd.client, "m2");
    assert.deepEqual(await claimRestart(etcd.client, "m3", 1), { claimed: true });
    let free = false;
    for (let i = 0; i < 40 && !free; i++) {
      await new Promise((r) => setTimeout(r, 100));
      free = (await etcd.client.get(KEYS.restartClaim).string()) === null;
    }
    assert.ok(free, "the slot was still held 4 s after its 1 s lease");
    assert.deepEqual(await claimRestart(etcd.client, "m4"), { claimed: true });
  });
});
