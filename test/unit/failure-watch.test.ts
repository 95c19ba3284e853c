import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { membersCutOff } from "../../src/consensus/failure-evidence.ts";
import { LINKS_PREFIX } from "../../src/consensus/links.ts";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { FailureWatch } from "../../src/node/failure-watch.ts";
import { createLogger } from "../../src/util/log.ts";

const key = (c: string) => c.repeat(64);
const [A, B, C, D, E] = ["a", "b", "c", "d", "e"].map(key) as [string, string, string, string, string];

/** A report by `self` with an up peering to each of `up` and a down one to each of `down`. */
function report(self: string, up: readonly string[], down: readonly string[] = []) {
  return {
    v: 1 as const,
    publicKey: self,
    reportedAt: 1,
    yggdrasilMajor: "0.5",
    peerings: [...up.map((k) => ({ key: k, remote: "tcp://192.0.2.1:4863", inbound: false, up: true })), ...down.map((k) => ({ key: k, remote: "tcp://192.0.2.1:4863", inbound: false, up: false }))],
  };
}

describe("members cut off by the link reports", () => {
  it("follows up peerings from the root through the members it reaches, and only theirs", () => {
    // A–B–C in a line, D linked to nobody alive, E dead with a stale report still claiming D and A.
    const reports = new Map([
      [A, report(A, [B], [E])],
      [B, report(B, [A, C])],
      [C, report(C, [B])],
      [D, report(D, [E])],
      [E, report(E, [A, D])],
    ]);
    assert.deepEqual(membersCutOff(reports, A), { cutOff: [D, E], reached: [A, B, C] });
    // Down peerings reach nobody: C's only link went down at both ends.
    reports.set(B, report(B, [A], [C]));
    reports.set(C, report(C, [], [B]));
    assert.deepEqual(membersCutOff(reports, A).cutOff, [C, D, E]);
  });

  it("a member with no report is never cut off, and a root without a report or an up link says nothing", () => {
    const reports = new Map([
      [A, report(A, [B])],
      [B, report(B, [A])],
    ]);
    assert.deepEqual(membersCutOff(reports, A).cutOff, [], "C has no report: nothing is known of it");
    assert.deepEqual(membersCutOff(reports, C), { cutOff: [], reached: [C] }, "C asks but has no report");
    reports.set(A, report(A, [], [B]));
    assert.deepEqual(membersCutOff(reports, A).cutOff, [], "A links to nobody: the fault is most likely A's");
  });
});

/** A FailureWatch over fakes: which hosts answer, what was revoked. */
function harness(o: { answering: Set<string>; revokeFails?: () => boolean; reports?: Map<string, string> }) {
  const revoked: string[] = [];
  const probed: string[] = [];
  const logs: string[] = [];
  const log = { ...createLogger(false), info: (m: string) => void logs.push(m), debug: (m: string) => void logs.push(`debug: ${m}`) };
  const watch = new FailureWatch({
    log,
    probe: async (host) => {
      probed.push(host);
      return o.answering.has(host);
    },
    revoke: async (k) => {
      if (o.revokeFails?.()) throw new Error("etcdserver: request timed out");
      revoked.push(k);
      return "7587887";
    },
    readReports: async () => o.reports ?? new Map(),
    timing: { probeTimeoutMs: 10, earlyValidMs: 200, spareMs: 10_000, recheckMs: 20, settleMs: 1, maxProbes: 16 },
  });
  const put = (k: string, r: ReturnType<typeof report>) => watch.observe("put", `${LINKS_PREFIX}${k}`, JSON.stringify(r));
  /** A report in the KV, read when this member becomes a voter (before that it does not watch them). */
  const stored = (k: string, r: ReturnType<typeof report>) => void o.reports?.set(`${LINKS_PREFIX}${k}`, JSON.stringify(r));
  return { watch, revoked, probed, logs, put, stored };
}

const settle = (ms = 60) => new Promise((r) => setTimeout(r, ms));
const addr = (k: string) => addressForKey(k);

describe("the voters' failure watch", () => {
  it("ends the record of a member no one links to any more and that does not answer, once", async () => {
    const answering = new Set([addr(A), addr(B)]);
    // Reports written before this member led are read when it takes the lead.
    const h = harness({ answering, reports: new Map() });
    try {
      h.stored(A, report(A, [B, C]));
      h.stored(B, report(B, [A, C]));
      h.stored(C, report(C, [A, B]));
      h.watch.follow({ self: A, agentPort: 4864 });
      await settle();
      assert.deepEqual(h.revoked, [], "everyone linked: nothing probed, nothing ended");
      assert.deepEqual(h.probed, []);
      // C is killed: both its neighbours report their peerings with it down; its own report is stale.
      h.put(A, report(A, [B], [C]));
      h.put(B, report(B, [A], [C]));
      await settle();
      assert.deepEqual(h.revoked, [C]);
      assert.ok((h.probed as string[]).includes(addr(C)) && (h.probed as string[]).includes(addr(B)), "the suspect and a linked member (the control) were probed");
      assert.ok(h.logs.some((l) => l.includes("its node record is ended now (lease 7587887 revoked)")), h.logs.join("\n"));
      // The same reports again within the spare time: not ended twice.
      h.put(B, report(B, [A], [C]));
      await settle();
      assert.deepEqual(h.revoked, [C]);
    } finally {
      h.watch.stop();
    }
  });

  it("spares a suspect that answers (a slow or just-joined member), and ends nothing when no linked member answers either", async () => {
    const answering = new Set([addr(A), addr(B), addr(C)]);
    const h = harness({ answering });
    try {
      h.watch.follow({ self: A, agentPort: 4864 });
      h.put(A, report(A, [B]));
      h.put(B, report(B, [A]));
      h.put(C, report(C, [A]));
      await settle();
      assert.deepEqual(h.revoked, [], "C answered its probe");
      assert.ok(h.probed.includes(addr(C)));
      // Another member's pair: D cut off and not answering, but B (the control) does not answer either.
      const h2 = harness({ answering: new Set() });
      try {
        h2.watch.follow({ self: A, agentPort: 4864 });
        h2.put(A, report(A, [B], [D]));
        h2.put(B, report(B, [A, C]));
        h2.put(C, report(C, [B]));
        h2.put(D, report(D, [A]));
        await settle();
        assert.deepEqual(h2.revoked, []);
        assert.ok(h2.logs.some((l) => l.includes("no linked member answered either")), h2.logs.join("\n"));
      } finally {
        h2.watch.stop();
      }
    } finally {
      h.watch.stop();
    }
  });

  it("probes a spared member again when a report about it changes: one that answered a moment ago and is killed now is ended at once", async () => {
    const answering = new Set([addr(A), addr(B), addr(C)]);
    const h = harness({ answering });
    try {
      h.watch.follow({ self: A, agentPort: 4864 });
      // Just formed: A's and B's reports do not list C yet, C's does: C is probed and answers.
      h.put(A, report(A, [B]));
      h.put(B, report(B, [A]));
      h.put(C, report(C, [A, B]));
      await settle();
      assert.deepEqual(h.revoked, []);
      assert.ok(h.logs.some((l) => l.includes("answered over the mesh: left alone")), h.logs.join("\n"));
      // An unrelated change (no word of C) does not lift C's spare.
      const probesBefore = h.probed.filter((x) => x === addr(C)).length;
      h.put(B, report(B, [A], [D]));
      await settle();
      assert.equal(h.probed.filter((x) => x === addr(C)).length, probesBefore, "C probed again on news that does not concern it");
      // C is killed: the reports about it change (its peerings go down): probed again, ended.
      answering.delete(addr(C));
      h.put(A, report(A, [B], [C]));
      await settle();
      assert.deepEqual(h.revoked, [C]);
    } finally {
      h.watch.stop();
    }
  });

  it("probes a member as soon as one report shows its peering down, and ends it on that probe when the last report comes", async () => {
    const answering = new Set([addr(A), addr(B)]);
    const h = harness({ answering });
    try {
      h.watch.follow({ self: A, agentPort: 4864 });
      h.put(A, report(A, [B, C]));
      h.put(B, report(B, [A, C]));
      h.put(C, report(C, [A, B]));
      await settle();
      assert.deepEqual(h.probed, [], "everyone linked: nothing probed");
      // C is killed; A sees it first: C is still linked through B's report, but probed already.
      h.put(A, report(A, [B], [C]));
      await settle(30);
      assert.deepEqual(h.revoked, []);
      assert.deepEqual(h.probed.filter((x) => x === addr(C)).length, 1, "C probed on the first report of a peering with it down");
      // B's report comes: C is cut off, and the early probe stands: ended without probing C again.
      h.put(B, report(B, [A], [C]));
      await settle(30);
      assert.deepEqual(h.revoked, [C]);
      assert.deepEqual(h.probed.filter((x) => x === addr(C)).length, 1, "C not probed a second time");
    } finally {
      h.watch.stop();
    }
  });

  it("ends nothing when half the members or more look cut off, nor while this member is not a voter", async () => {
    const h = harness({ answering: new Set([addr(A)]), reports: new Map() });
    try {
      h.stored(A, report(A, [B], [C, D]));
      h.stored(B, report(B, [A]));
      h.stored(C, report(C, [D]));
      h.stored(D, report(D, [C]));
      h.watch.follow({ self: A, agentPort: 4864 });
      await settle();
      assert.deepEqual(h.probed, [], "2 of 4 cut off: more likely this side's fault");
      h.watch.follow(undefined);
      h.put(E, report(E, [D]));
      h.put(B, report(B, [A, E]));
      await settle();
      assert.deepEqual(h.probed, [], "not a voter");
    } finally {
      h.watch.stop();
    }
  });

  it("reads the reports afresh when it becomes a voter again or its watch starts again: a report that went meanwhile is forgotten", async () => {
    const reports = new Map<string, string>();
    const h = harness({ answering: new Set([addr(A), addr(B)]), reports });
    try {
      h.stored(A, report(A, [B, C]));
      h.stored(B, report(B, [A, C]));
      h.stored(C, report(C, [A, B]));
      h.stored(D, report(D, [A]));
      h.stored(E, report(E, [A, B]));
      h.watch.follow({ self: A, agentPort: 4864 });
      await settle();
      // D and E are not linked to by anyone, answer nothing: probed; "half or more" does not hold (2 of 5).
      assert.deepEqual(h.revoked.sort(), [D, E].sort());
      // Not a voter for a while (no reports watched): D's and E's reports went with their leases.
      h.watch.follow(undefined);
      reports.delete(`${LINKS_PREFIX}${D}`);
      reports.delete(`${LINKS_PREFIX}${E}`);
      h.revoked.length = 0;
      h.probed.length = 0;
      h.watch.follow({ self: A, agentPort: 4864 });
      await settle();
      assert.deepEqual(h.probed, [], "a stale report of a member gone meanwhile made it a suspect again");
      // A voter's watch started again: the reports are read again.
      h.stored(D, report(D, [A]));
      h.watch.reseed();
      await settle();
      assert.deepEqual(h.revoked, [D]);
    } finally {
      h.watch.stop();
    }
  });

  it("a revocation the KV does not take is tried again", async () => {
    let failures = 2;
    const h = harness({ answering: new Set([addr(A), addr(B)]), revokeFails: () => failures-- > 0 });
    try {
      h.watch.follow({ self: A, agentPort: 4864 });
      h.put(A, report(A, [B], [C]));
      h.put(B, report(B, [A]));
      h.put(C, report(C, [A, B]));
      await settle(200);
      assert.deepEqual(h.revoked, [C]);
    } finally {
      h.watch.stop();
    }
  });
});
