import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { LINKS_PREFIX, linkReportKey, parseLinkReport } from "../../src/consensus/links.ts";
import { NodeRegistration, type LeaseClient, type NodeRecord, type RecordLease } from "../../src/consensus/registry.ts";
import type { PeerInfo } from "../../src/mesh/yggdrasil/admin.ts";
import { LinkReportSchedule, buildLinkReport, linkShape, shapeOfPeers, withConfiguredKeys } from "../../src/node/link-report.ts";
import { LinkReporter, type LeaseWriter } from "../../src/node/step-links.ts";
import type { Logger } from "../../src/util/log.ts";

const SELF = "aa".repeat(32);
const KB = "bb".repeat(32);
const KC = "cc".repeat(32);
const quiet: Logger = { verbose: false, debug: () => undefined, info: () => undefined, warn: () => undefined };

// getPeers as admin.ts normalises the answers 0.4.7 and 0.5.12 gave (test/unit/yggdrasil-admin.test.ts).
const PEERS_04: PeerInfo[] = [
  { publicKey: KB, address: "200:14ae::1", remote: "tcp://127.0.0.1:41001", up: true, inbound: null, port: 1, rxBytes: 2226, txBytes: 2635, uptimeSeconds: 7.224835674 },
];
const PEERS_05: PeerInfo[] = [
  { publicKey: "", address: "", remote: "tcp://198.18.0.3:4863", up: false, inbound: false, lastError: "dial tcp 198.18.0.3:4863: connect: connection refused", lastErrorAgeSeconds: 3.648911385 },
  {
    publicKey: KB,
    address: "200:789d::1",
    remote: "tcp://198.18.0.2:4863",
    up: true,
    inbound: false,
    port: 1,
    rxBytes: 1594,
    txBytes: 1514,
    rxRate: 696,
    txRate: 868,
    uptimeSeconds: 3.648763076,
    latencyMs: 0.47,
    lastError: "dial tcp 198.18.0.2:4863: connect: connection refused",
    lastErrorAgeSeconds: 5.649595008,
  },
  { publicKey: KB, address: "200:789d::1", remote: "tcp://198.18.0.2:34648", up: true, inbound: true, port: 1, rxBytes: 1076, txBytes: 931, uptimeSeconds: 4.639014898, latencyMs: 0.8 },
];

function roundTrip(report: unknown) {
  const parsed = parseLinkReport(linkReportKey(SELF), JSON.stringify(report));
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.problem);
  return parsed.report;
}

describe("link report: built from getPeers", () => {
  it("0.5: every peering with its direction, counters in the report's units, a down configured peering named by its key", () => {
    const configured = [
      { host: "198.18.0.2", port: 4863, publicKey: KB },
      { host: "198.18.0.3", port: 4863, publicKey: KC, password: "a-long-enough-password" },
    ];
    const peers = withConfiguredKeys(PEERS_05, configured);
    const r = roundTrip(buildLinkReport(peers, { publicKey: SELF, major: "0.5", readAt: 1_700_000_000_000.4, treeParent: KB }));
    assert.equal(r.reportedAt, 1_700_000_000_000);
    assert.equal(r.treeParent, KB);
    assert.deepEqual(r.peerings, [
      {
        key: KB,
        remote: "tcp://198.18.0.2:4863",
        inbound: false,
        up: true,
        port: 1,
        latencyMs: 0.47,
        rxBytes: 1594,
        txBytes: 1514,
        rxBytesPerSecond: 696,
        txBytesPerSecond: 868,
        uptimeSeconds: 4,
        lastError: "dial tcp 198.18.0.2:4863: connect: connection refused",
        lastErrorAgeSeconds: 6,
      },
      { key: KB, remote: "tcp://198.18.0.2:34648", inbound: true, up: true, port: 1, latencyMs: 0.8, rxBytes: 1076, txBytes: 931, uptimeSeconds: 5 },
      { key: KC, remote: "tcp://198.18.0.3:4863", inbound: false, up: false, lastError: "dial tcp 198.18.0.3:4863: connect: connection refused", lastErrorAgeSeconds: 4 },
    ]);
  });

  it("0.4: direction unknown (null), no latency, no tree parent", () => {
    const r = roundTrip(buildLinkReport(PEERS_04, { publicKey: SELF, major: "0.4", readAt: 5 }));
    assert.deepEqual(r.peerings, [{ key: KB, remote: "tcp://127.0.0.1:41001", inbound: null, up: true, port: 1, rxBytes: 2226, txBytes: 2635, uptimeSeconds: 7 }]);
    assert.equal(r.treeParent, undefined);
    assert.equal(r.yggdrasilMajor, "0.4");
  });

  it("a peering without a usable key keeps only its remote; a down one not configured here stays unnamed", () => {
    const r = roundTrip(buildLinkReport([{ publicKey: "", address: "", remote: "tcp://[fd00::1]:4863", up: false, inbound: false }], { publicKey: SELF, major: "0.5", readAt: 1 }));
    assert.deepEqual(r.peerings, [{ remote: "tcp://[fd00::1]:4863", inbound: false, up: false }]);
    assert.equal(LINKS_PREFIX, "raptiformica/links/");
  });
});

describe("link report: what counts as a change", () => {
  const base = buildLinkReport(PEERS_05, { publicKey: SELF, major: "0.5", readAt: 1, treeParent: KB });
  const shape = linkShape(base);
  const variant = (change: (p: PeerInfo[]) => PeerInfo[], treeParent: string | undefined = KB) =>
    linkShape(buildLinkReport(change(PEERS_05.map((p) => ({ ...p }))), { publicKey: SELF, major: "0.5", readAt: 99, treeParent }));

  it("counters, latency, uptime and errors are not: the shape stays", () => {
    assert.equal(
      variant((ps) => ps.map((p) => ({ ...p, rxBytes: (p.rxBytes ?? 0) + 1e6, txBytes: 7, latencyMs: 12, uptimeSeconds: 999, lastError: "other", lastErrorAgeSeconds: 50, rxRate: 1 }))),
      shape,
    );
  });

  it("the shape the agent compares every second is the shape of the report it would write", () => {
    for (const [peers, major] of [[PEERS_05, "0.5"], [PEERS_04, "0.4"], [[], "0.5"]] as const) {
      assert.equal(shapeOfPeers(peers, major), linkShape(buildLinkReport(peers, { publicKey: SELF, major, readAt: 1, treeParent: KB })));
    }
  });

  it("up/down, direction, a new or gone peering and a new port are; the tree parent is not (read at each write)", () => {
    assert.notEqual(variant((ps) => ps.map((p, i) => (i === 1 ? { ...p, up: false } : p))), shape, "down");
    assert.notEqual(variant((ps) => ps.map((p, i) => (i === 2 ? { ...p, inbound: false } : p))), shape, "direction");
    assert.notEqual(variant((ps) => ps.slice(1)), shape, "gone");
    assert.notEqual(variant((ps) => [...ps, { publicKey: KC, address: "", remote: "tcp://x:1", up: true, inbound: true, port: 2 }]), shape, "new");
    assert.notEqual(variant((ps) => ps.map((p, i) => (i === 1 ? { ...p, port: 5 } : p))), shape, "made again on another port");
    assert.equal(variant((ps) => ps, KC), shape, "tree parent");
  });
});

describe("link report: when it is written", () => {
  const t = { minGapMs: 2_000, refreshMs: 30_000 };

  it("first at once; a change at once but never within 2 s of the last write; counters only every 30 s", () => {
    const s = new LinkReportSchedule(t);
    assert.deepEqual(s.decide(0, "A", 1), { write: true, why: "first" });
    s.wrote(0, "A", 1);
    assert.deepEqual(s.decide(1_000, "A", 1), { write: false, againInMs: 29_000 }, "nothing but counters changed");
    assert.deepEqual(s.decide(29_999, "A", 1), { write: false, againInMs: 1 });
    assert.deepEqual(s.decide(500, "B", 1), { write: false, againInMs: 1_500 }, "a change within the gap waits");
    assert.deepEqual(s.decide(2_000, "B", 1), { write: true, why: "changed" });
    s.wrote(2_000, "B", 1);
    assert.deepEqual(s.decide(32_000, "B", 1), { write: true, why: "refresh" });
    s.wrote(32_000, "B", 1);
    assert.deepEqual(s.decide(33_000, "B", 2), { write: false, againInMs: 1_000 }, "a new lease waits out the gap too");
    assert.deepEqual(s.decide(34_000, "B", 2), { write: true, why: "lease" });
  });

  it("a clock that went back does not hold a change back", () => {
    const s = new LinkReportSchedule(t);
    s.wrote(10_000, "A", 1);
    assert.deepEqual(s.decide(5_000, "B", 1), { write: true, why: "changed" });
  });
});

/** A node record lease the test drives: what NodeRegistration needs of etcd3's. */
class FakeLease implements RecordLease {
  readonly handlers = new Map<string, (arg: never) => void>();
  readonly puts: { key: string; value: string }[] = [];
  on(event: string, handler: (arg: never) => void): this {
    this.handlers.set(event, handler);
    return this;
  }
  emit(event: "lost"): void {
    (this.handlers.get(event) as ((a: unknown) => void) | undefined)?.(new Error("lost"));
  }
  put(key: string) {
    return { value: (value: string) => ({ exec: async () => void this.puts.push({ key, value }) }) };
  }
  release(): void {}
  async revoke(): Promise<void> {}
}

class FakeLeases implements LeaseClient {
  readonly granted: FakeLease[] = [];
  lease(): FakeLease {
    const l = new FakeLease();
    this.granted.push(l);
    return l;
  }
}

const rec: NodeRecord = { publicKey: SELF, name: "n0", meshAddress: "200::1", role: "voter", startedAt: 1, hostname: "h", version: "0", yggdrasilMajor: "0.5" };

describe("link report: on the node record's lease", () => {
  it("is written on the record's own lease, not before the record, and not on a lost one", async () => {
    const leases = new FakeLeases();
    const reg = new NodeRegistration(leases, 5);
    assert.equal(reg.leaseGeneration, undefined);
    assert.equal(await reg.putOnLease(linkReportKey(SELF), "{}"), undefined, "no lease, no record: nothing written");
    await reg.ensure(rec);
    const first = reg.leaseGeneration;
    assert.equal(await reg.putOnLease(linkReportKey(SELF), "r1"), first);
    assert.deepEqual(leases.granted[0]?.puts.map((p) => p.key), [`raptiformica/nodes/${SELF}`, `raptiformica/links/${SELF}`]);
    leases.granted[0]?.emit("lost");
    assert.equal(await reg.putOnLease(linkReportKey(SELF), "r2"), undefined, "a lost lease takes nothing more");
    await reg.ensure(rec);
    assert.notEqual(reg.leaseGeneration, first);
    assert.equal(leases.granted.length, 2);
    // Another registration (a new KV session) never reuses a generation.
    const other = new NodeRegistration(new FakeLeases(), 5);
    await other.ensure(rec);
    assert.notEqual(other.leaseGeneration, reg.leaseGeneration);
    assert.notEqual(other.leaseGeneration, first);
  });
});

/** A lease writer that records what the reporter wrote; `generation` is changed by the test. */
function fakeWriter() {
  const writes: { key: string; report: ReturnType<typeof JSON.parse>; generation: number }[] = [];
  const w = {
    generation: 1 as number | undefined,
    writes,
    get leaseGeneration() {
      return w.generation;
    },
    async putOnLease(key: string, value: string) {
      if (w.generation === undefined) return undefined;
      writes.push({ key, report: JSON.parse(value), generation: w.generation });
      return w.generation;
    },
  };
  return w satisfies LeaseWriter;
}

describe("link reporter (the agent step)", () => {
  it("writes a changed peering promptly, counters only at the refresh, and again on a new lease", async () => {
    let now = 1_000_000;
    const writer = fakeWriter();
    let reads = 0;
    let trees = 0;
    const reporter = new LinkReporter({
      log: quiet,
      now: () => now,
      readPeers: async () => {
        reads++;
        return PEERS_05;
      },
      readTreeParent: async () => {
        trees++;
        return KB;
      },
    });
    const target = { publicKey: SELF, major: "0.5", lease: writer };
    try {
      // No look from the peer loop yet: the tick asks getPeers itself.
      await reporter.tick(target);
      assert.equal(reads, 1);
      assert.equal(writer.writes.length, 1);
      assert.equal(writer.writes[0]?.key, `raptiformica/links/${SELF}`);
      assert.equal(writer.writes[0]?.report.treeParent, KB);
      // The peer loop's looks every second, counters growing: nothing written for 30 s.
      const settle = () => new Promise((r) => setImmediate(r));
      for (let s = 1; s < 30; s++) {
        now += 1_000;
        reporter.observe(PEERS_05.map((p) => ({ ...p, rxBytes: (p.rxBytes ?? 0) + s * 100 })));
        await settle();
      }
      assert.equal(writer.writes.length, 1, "counters alone wait for the refresh");
      now += 1_000;
      reporter.observe(PEERS_05);
      await settle();
      assert.equal(writer.writes.length, 2, "the 30 s refresh");
      // A peering goes down 1 s later: held back to 2 s after the last write, then written.
      now += 1_000;
      const down = PEERS_05.map((p, i) => (i === 1 ? { ...p, up: false } : p));
      reporter.observe(down);
      await settle();
      assert.equal(writer.writes.length, 2);
      now += 1_000;
      reporter.observe(down);
      await settle();
      assert.equal(writer.writes.length, 3);
      assert.equal(writer.writes[2]?.report.peerings.filter((p: { up: boolean }) => p.up).length, 1);
      // The lease was lost and a new one granted: the report is written on it.
      writer.generation = undefined;
      now += 5_000;
      reporter.observe(down);
      await settle();
      assert.equal(writer.writes.length, 3, "no lease: nothing written");
      writer.generation = 2;
      await reporter.tick(target);
      assert.equal(writer.writes.length, 4);
      assert.equal(writer.writes[3]?.generation, 2);
      assert.equal(reads, 1, "the peer loop's looks were fresh: getPeers was not asked again");
      assert.equal(trees, writer.writes.length + 2, "the tree parent is asked at each write and at a tick 5 s after the last look (the two ticks)");
    } finally {
      reporter.stop();
    }
  });

  it("0.5: a new tree parent with no peering changed is written at the next tick 5 s after the last look, not only at the 30 s refresh", async () => {
    let now = 2_000_000;
    const writer = fakeWriter();
    let parent = KB;
    let trees = 0;
    const reporter = new LinkReporter({
      log: quiet,
      now: () => now,
      readPeers: async () => PEERS_05,
      readTreeParent: async () => {
        trees++;
        return parent;
      },
    });
    const target = { publicKey: SELF, major: "0.5", lease: writer };
    try {
      await reporter.tick(target);
      assert.equal(writer.writes.length, 1);
      assert.equal(writer.writes[0]?.report.treeParent, KB);
      parent = SELF;
      // Ticks within 5 s of the last look do not ask, so the change is not seen yet.
      now += 2_000;
      await reporter.tick(target);
      assert.equal(writer.writes.length, 1);
      assert.equal(trees, 2, "one look at the first tick and one at its write");
      now += 3_000;
      await reporter.tick(target);
      assert.equal(writer.writes.length, 2, "the new parent is a change");
      assert.equal(writer.writes[1]?.report.treeParent, SELF);
      // Same parent again: nothing to write.
      now += 5_000;
      await reporter.tick(target);
      assert.equal(writer.writes.length, 2);
    } finally {
      reporter.stop();
    }
  });

  it("0.4: no tree parent is asked for; a getPeers that fails writes nothing and throws nothing", async () => {
    const writer = fakeWriter();
    let asked = 0;
    let fail = true;
    const reporter = new LinkReporter({
      log: quiet,
      readPeers: async () => {
        if (fail) throw new Error("yggdrasil is not running");
        return PEERS_04;
      },
      readTreeParent: async () => {
        asked++;
        return KB;
      },
    });
    try {
      await reporter.tick({ publicKey: SELF, major: "0.4", lease: writer });
      assert.equal(writer.writes.length, 0);
      fail = false;
      await reporter.tick({ publicKey: SELF, major: "0.4", lease: writer });
      assert.equal(writer.writes.length, 1);
      assert.equal(writer.writes[0]?.report.yggdrasilMajor, "0.4");
      assert.equal(asked, 0);
    } finally {
      reporter.stop();
    }
  });
});
