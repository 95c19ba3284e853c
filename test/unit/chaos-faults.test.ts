/**
 * The chaos run's fault schedule (test/chaos/faults.ts): the same seed gives the same faults,
 * every kind comes up, targets and timings stay in bounds; and which members' side keeps quorum.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { FAULT_KINDS, quorumSide, schedule, type FaultPlan } from "../chaos/faults.ts";

const take = (seed: number, n: number, kinds = FAULT_KINDS) => {
  const out: FaultPlan[] = [];
  const g = schedule(seed, kinds, 5);
  for (let k = 0; k < n; k++) out.push(g.next().value);
  return out;
};

describe("fault schedule", () => {
  it("is the same for the same seed, and another for another seed", () => {
    assert.deepEqual(take(42, 50), take(42, 50));
    assert.notDeepEqual(take(42, 50), take(43, 50));
  });

  it("brings every kind, with targets and timings in bounds", () => {
    const plans = take(7, 2000);
    assert.deepEqual(new Set(plans.map((p) => p.kind)), new Set(FAULT_KINDS));
    for (const p of plans) {
      assert.ok(p.targets.every((t) => Number.isInteger(t) && t >= 0 && t < 5), JSON.stringify(p));
      assert.equal(new Set(p.targets).size, p.targets.length, JSON.stringify(p));
      assert.ok(p.pauseMs >= 1000 && p.pauseMs <= 5000);
      switch (p.kind) {
        case "partition-minority":
          assert.ok(p.targets.length >= 1 && p.targets.length <= 2, JSON.stringify(p));
          assert.ok(p.holdMs >= 5000 && p.holdMs <= 20_000);
          break;
        case "partition-majority":
          assert.ok(p.targets.length >= 3 && p.targets.length <= 4, JSON.stringify(p));
          break;
        case "restart-all":
          assert.equal(p.targets.length, 5);
          assert.ok(p.times >= 2 && p.times <= 3);
          break;
        case "link-flap":
          assert.ok(p.times >= 3 && p.times <= 6 && p.flapMs >= 300 && p.flapMs <= 3000);
          break;
        case "kill-member":
          assert.ok(p.holdMs >= 2000 && p.holdMs <= 10_000);
          break;
        default:
          assert.equal(p.targets.length, 1);
          assert.equal(p.holdMs, 0);
      }
    }
  });

  it("draws only the kinds asked for, and refuses unknown ones", () => {
    assert.deepEqual(new Set(take(1, 200, ["kill-etcd", "move"] as never).map((p) => p.kind)), new Set(["kill-etcd", "move"]));
    assert.throws(() => schedule(1, ["kill-everything"] as never, 5).next(), /unknown fault kind kill-everything/);
    assert.throws(() => schedule(1, [], 5).next(), /no fault kinds/);
  });
});

describe("quorum side", () => {
  const voters = [0, 2, 4];

  it("a killed process: every member, the victim too (its own etcd comes back by itself)", () => {
    assert.deepEqual(quorumSide({ kind: "kill-etcd", targets: [2] }, voters, 5), [0, 1, 2, 3, 4]);
    assert.deepEqual(quorumSide({ kind: "kill-agent", targets: [1] }, voters, 5), [0, 1, 2, 3, 4]);
  });

  it("a member off the mesh: everyone else", () => {
    for (const kind of ["kill-yggdrasil", "kill-member", "link-flap", "move"] as const) {
      assert.deepEqual(quorumSide({ kind, targets: [2] }, voters, 5), [0, 1, 3, 4], kind);
    }
  });

  it("a partition: the side with a majority of the voters, whichever is bigger", () => {
    assert.deepEqual(quorumSide({ kind: "partition-minority", targets: [0, 1] }, voters, 5), [2, 3, 4]);
    // Three members cut off holding one voter: the two voters left keep quorum.
    assert.deepEqual(quorumSide({ kind: "partition-majority", targets: [0, 1, 3] }, voters, 5), [2, 4]);
    // Cut off with two voters: that side keeps it.
    assert.deepEqual(quorumSide({ kind: "partition-majority", targets: [0, 2, 3] }, voters, 5), [0, 2, 3]);
  });

  it("every member restarted: no one", () => {
    assert.deepEqual(quorumSide({ kind: "restart-all", targets: [0, 1, 2, 3, 4] }, voters, 5), []);
  });

  it("with voters unknown or already short, no side is claimed", () => {
    assert.deepEqual(quorumSide({ kind: "partition-minority", targets: [0] }, [], 5), []);
    assert.deepEqual(quorumSide({ kind: "kill-member", targets: [0] }, [0, 2], 5), []);
  });
});
