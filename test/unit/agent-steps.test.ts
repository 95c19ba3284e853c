import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { FlatMapping } from "../../src/config/flatten.ts";
import type { EtcdMember } from "../../src/consensus/client.ts";
import { clientUrl, peerUrl } from "../../src/consensus/etcd-args.ts";
import type { NodeRecord } from "../../src/consensus/registry.ts";
import { DEFAULT_SETTINGS, KEYS, type ClusterSettings } from "../../src/consensus/settings.ts";
import type { VoterAction, VoterLogEntry } from "../../src/consensus/voters.ts";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { TickPause, VOTER_DUE_SLACK_MS, nextInterval } from "../../src/node/agent-interval.ts";
import { hostOfUrl, initialState, type ClusterChange } from "../../src/node/agent-state.ts";
import { kvEndpoints } from "../../src/node/step-kv-session.ts";
import { PROXY_ADDITIONS_SETTLE_MS, proxyEndpointsToRun, proxyUpstreams, removedWhileCutOff } from "../../src/node/step-consensus.ts";
import { EVICTION_INTERVAL_MS, LEARNER_START_TIMEOUT_MS, LeaderDuties, type LeaderKv } from "../../src/node/step-leader.ts";
import { applyChange, routeChange } from "../../src/node/watch-routing.ts";
import { createLogger, type Logger } from "../../src/util/log.ts";

/** A clock the test moves by hand. */
function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, set: (ms: number) => void (t = start + ms) };
}

const quiet: Logger = { verbose: false, debug: () => undefined, info: () => undefined, warn: () => undefined };

describe("back-off between ticks (nextInterval)", () => {
  it("converging: 500 ms for 7 ticks, doubling every 8 ticks up to 2 s", () => {
    let busyTicks = 0;
    const seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = nextInterval({ ready: false, leader: false, voterChangePending: false, busyTicks });
      busyTicks = r.busyTicks;
      seen.push(r.ms);
    }
    assert.deepEqual(seen.slice(0, 7), Array(7).fill(500));
    assert.deepEqual(seen.slice(7, 15), Array(8).fill(1000));
    assert.deepEqual(seen.slice(15), Array(25).fill(2000));
  });

  it("never longer than the steady period, and honours a slower busy period", () => {
    assert.equal(nextInterval({ ready: false, leader: false, voterChangePending: false, busyTicks: 100 }, { steadyMs: 1200 }).ms, 1200);
    assert.equal(nextInterval({ ready: false, leader: false, voterChangePending: false, busyTicks: 0 }, { busyMs: 3000, steadyMs: 10_000 }).ms, 3000);
    assert.equal(nextInterval({ ready: false, leader: false, voterChangePending: false, busyTicks: 100 }, { busyMs: 3000, steadyMs: 10_000 }).ms, 3000);
  });

  it("ready: the steady period and the back-off starts over; a leader with a voter change under way looks each second", () => {
    const ready = nextInterval({ ready: true, leader: false, voterChangePending: true, busyTicks: 30 });
    assert.deepEqual(ready, { ms: 5000, busyTicks: 0 });
    assert.equal(nextInterval({ ready: true, leader: true, voterChangePending: false, busyTicks: 0 }).ms, 5000);
    assert.equal(nextInterval({ ready: true, leader: true, voterChangePending: true, busyTicks: 0 }).ms, 1000);
    assert.equal(nextInterval({ ready: true, leader: true, voterChangePending: true, busyTicks: 0 }, { steadyMs: 300 }).ms, 300);
    assert.equal(nextInterval({ ready: false, leader: false, voterChangePending: false, busyTicks: 0 }).busyTicks, 1);
  });

  it("a leader looks again just after a dead voter's grace period ends, not up to a second later", () => {
    const pending = { ready: true, leader: true, voterChangePending: true, busyTicks: 0 };
    assert.equal(nextInterval({ ...pending, voterDueMs: 300 }).ms, 300 + VOTER_DUE_SLACK_MS);
    assert.equal(nextInterval({ ...pending, voterDueMs: 0 }).ms, VOTER_DUE_SLACK_MS);
    assert.equal(nextInterval({ ...pending, voterDueMs: 2_500 }).ms, 1000, "still each second before that");
    assert.equal(nextInterval({ ...pending, leader: false, voterDueMs: 300 }).ms, 5000, "only the leader");
  });
});

// ---- leader duties over a fake KV --------------------------------------------------------

const addr = (i: number) => `200::${i}`;
const member = (i: number, learner = false, started = true): EtcdMember => ({ id: `m${i}`, name: started ? `n${i}` : "", peerURLs: [peerUrl(addr(i), 2380)], clientURLs: [], isLearner: learner });
const record = (i: number): NodeRecord => ({ publicKey: `k${i}`, name: `n${i}`, meshAddress: addr(i), role: "voter", startedAt: i, hostname: `n${i}`, version: "t", yggdrasilMajor: "0.5" });

/** A cluster as etcd would hold it: applying an action changes the member list as etcd would. */
class FakeLeaderKv implements LeaderKv {
  applied: VoterAction[] = [];
  log: VoterLogEntry[] = [];
  passes: { at: number; mapping: FlatMapping | undefined; evictAfterMs: number }[] = [];
  failPass = false;
  /** Member ids whose etcd answers over the mesh (none: every member without a record is dead). */
  answering = new Set<string>();
  asked: string[] = [];
  constructor(
    public list: EtcdMember[],
    public alive: NodeRecord[],
    private readonly clock: { now: () => number },
  ) {}
  async members() {
    return this.list.map((m) => ({ ...m }));
  }
  async nodeRecords() {
    return [...this.alive];
  }
  async answers(m: EtcdMember) {
    this.asked.push(m.id);
    return this.answering.has(m.id);
  }
  async applyVoterAction(a: VoterAction) {
    if (a.kind === "none") return undefined;
    this.applied.push(a);
    if (a.kind === "remove-dead-voter" || a.kind === "remove-stale-learner" || a.kind === "remove-spare-learner") this.list = this.list.filter((m) => m.id !== a.member.id);
    if (a.kind === "promote") this.list = this.list.map((m) => (m.id === a.member.id ? { ...m, isLearner: false } : m));
    if (a.kind === "add-learner") this.list.push({ id: `new-${a.node.publicKey}`, name: "", peerURLs: [a.peerUrl], clientURLs: [], isLearner: true });
    return a.kind;
  }
  async appendVoterLog(e: VoterLogEntry) {
    this.log.push(e);
  }
  async evictionPass(o: { self: string; evictAfterMs: number; mapping?: FlatMapping }) {
    this.passes.push({ at: this.clock.now(), mapping: o.mapping, evictAfterMs: o.evictAfterMs });
    if (this.failPass) throw new Error("etcd down");
    return [];
  }
}

const settings: ClusterSettings = { ...DEFAULT_SETTINGS, deadVoterGraceSeconds: 10, maxVoters: 5, peerPort: 2380, evictAfterSeconds: 600 };

describe("the pause between ticks (TickPause)", () => {
  it("ends after its time, or at once on a poke; a poke with no pause under way does nothing to the next one", async () => {
    const p = new TickPause();
    let t0 = performance.now();
    await p.wait(60);
    assert.ok(performance.now() - t0 >= 55, "waited its time");
    t0 = performance.now();
    const waiting = p.wait(10_000);
    setTimeout(() => p.poke(), 20);
    await waiting;
    assert.ok(performance.now() - t0 < 5000, "ended by the poke");
    p.poke();
    t0 = performance.now();
    await p.wait(60);
    assert.ok(performance.now() - t0 >= 55, "an earlier poke did not end this pause");
  });
});

describe("leader duties: the voter grace period and one change at a time", () => {
  it("removes a voter without a node record only once it has been gone for the grace period, and logs it", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([member(1), member(2), member(3)], [record(1), record(2)], clock);
    let pokes = 0;
    const duties = new LeaderDuties(quiet, () => pokes++, clock.now);
    for (const t of [0, 5_000, 9_999]) {
      clock.set(t);
      const r = await duties.run(kv, settings, "k1", () => undefined, false);
      assert.equal(r.voterChangePending, true, "a voter in its grace period keeps the leader looking each second");
    }
    assert.equal(kv.applied.length, 0);
    clock.set(10_000);
    await duties.run(kv, settings, "k1", () => undefined, true);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["remove-dead-voter"]);
    const removed = kv.applied[0];
    assert.equal(removed?.kind === "remove-dead-voter" ? removed.member.id : undefined, "m3");
    assert.equal(kv.log.length, 1);
    assert.equal(kv.log[0]?.time, new Date(clock.now()).toISOString());
    assert.equal(pokes, 1);
  });

  it("a voter without a record whose etcd still answers over the mesh is left in place (said once), and removed once it stops answering", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([member(1), member(2), member(3)], [record(1), record(2)], clock);
    kv.answering.add("m3");
    const said: string[] = [];
    const duties = new LeaderDuties(createLogger(false, (l) => void said.push(l)), () => undefined, clock.now);
    await duties.run(kv, settings, "k1", () => undefined, false);
    assert.deepEqual(kv.asked, [], "not asked during the grace period");
    for (const t of [10_000, 11_000]) {
      clock.set(t);
      await duties.run(kv, settings, "k1", () => undefined, true);
    }
    assert.equal(kv.applied.length, 0, "its etcd answers: not removed");
    assert.deepEqual(kv.asked, ["m3", "m3"]);
    assert.equal(said.filter((l) => /n3 has had no node record for 10 s, but its etcd answers over the mesh: left in place/.test(l)).length, 1, said.join(""));
    kv.answering.clear();
    clock.set(12_000);
    await duties.run(kv, settings, "k1", () => undefined, true);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["remove-dead-voter"]);
  });

  it("says when the first grace period ends, so the agent can wake just then", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([member(1), member(2), member(3)], [record(1), record(2)], clock);
    const duties = new LeaderDuties(quiet, () => undefined, clock.now);
    assert.equal((await duties.run(kv, settings, "k1", () => undefined, false)).voterDueMs, 10_000);
    clock.set(9_400);
    assert.equal((await duties.run(kv, settings, "k1", () => undefined, true)).voterDueMs, 600);
    clock.set(10_000);
    const r = await duties.run(kv, settings, "k1", () => undefined, true);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["remove-dead-voter"]);
    assert.equal(r.voterDueMs, undefined, "no grace period running once the voter is removed");
  });

  it("a voter whose record comes back starts its grace period over", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([member(1), member(2), member(3)], [record(1), record(2)], clock);
    const duties = new LeaderDuties(quiet, () => undefined, clock.now);
    await duties.run(kv, settings, "k1", () => undefined, false);
    clock.set(8_000);
    kv.alive = [record(1), record(2), record(3)];
    const back = await duties.run(kv, settings, "k1", () => undefined, true);
    assert.equal(back.voterChangePending, false);
    clock.set(9_000);
    kv.alive = [record(1), record(2)];
    await duties.run(kv, settings, "k1", () => undefined, false);
    clock.set(18_999);
    await duties.run(kv, settings, "k1", () => undefined, true);
    assert.equal(kv.applied.length, 0, "gone since 9 s: not yet at 18.999 s");
    clock.set(19_000);
    await duties.run(kv, settings, "k1", () => undefined, true);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["remove-dead-voter"]);
  });

  it("makes at most one membership change per tick on the way to a healthy voter set", async () => {
    const clock = fakeClock();
    // 5 voters, 2 dead; 3 alive non-members to grow with.
    const kv = new FakeLeaderKv([1, 2, 3, 4, 5].map((i) => member(i)), [1, 2, 3, 6, 7, 8].map(record), clock);
    const duties = new LeaderDuties(quiet, () => undefined, clock.now);
    const perTick: number[] = [];
    for (let t = 0; t <= 40_000; t += 1_000) {
      clock.set(t);
      const before = kv.applied.length;
      await duties.run(kv, settings, "k1", () => undefined, false);
      perTick.push(kv.applied.length - before);
      // A learner that was added starts (gets its name) by the next tick.
      kv.list = kv.list.map((m) => (m.isLearner && !m.name ? { ...m, name: `started-${m.id}` } : m));
    }
    assert.ok(perTick.every((n) => n <= 1), `changes per tick: ${perTick.join(",")}`);
    const kinds = kv.applied.map((a) => a.kind);
    // The replacement joins as a learner at once (no vote, so no quorum change) and is held
    // until the dead voters are gone: both removals come before any promotion.
    assert.equal(kinds[0], "add-learner", "the first replacement starts catching up during the grace period");
    assert.deepEqual(kinds.slice(1, 3), ["remove-dead-voter", "remove-dead-voter"], "dead voters go before any promotion");
    assert.ok(kinds.includes("add-learner") && kinds.includes("promote"), kinds.join(","));
    assert.equal(kv.list.filter((m) => !m.isLearner).length, 5, "grown back to 5 voters");
  });

  it("with the default settings a dead voter is replaced as the grace period ends: the learner joined when its record went", async () => {
    const clock = fakeClock();
    // max_voters 3, 5 nodes; n3's record just lapsed; n4 is the longest-running non-member.
    const kv = new FakeLeaderKv([member(1), member(2), member(3)], [record(1), record(2), record(4), record(5)], clock);
    const defaults: ClusterSettings = { ...DEFAULT_SETTINGS, maxVoters: 3, peerPort: 2380 };
    let pokes = 0;
    const duties = new LeaderDuties(quiet, () => pokes++, clock.now);
    const tick = async (t: number) => {
      clock.set(t);
      // A poke reconciles again at once: run until the leader has nothing more to do now.
      for (let before = -1; before !== pokes; ) {
        before = pokes;
        await duties.run(kv, defaults, "k1", () => undefined, true);
      }
      kv.list = kv.list.map((m) => (m.isLearner && !m.name ? { ...m, name: `started-${m.id}` } : m));
    };
    await tick(0);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["add-learner"], "the replacement joins as a learner while the voter has its grace");
    for (let t = 1_000; t < DEFAULT_SETTINGS.deadVoterGraceSeconds * 1000; t += 1_000) await tick(t);
    assert.equal(kv.applied.length, 1, "nothing else during the grace period");
    await tick(DEFAULT_SETTINGS.deadVoterGraceSeconds * 1000);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["add-learner", "remove-dead-voter", "promote"]);
    assert.deepEqual(kv.list.filter((m) => !m.isLearner).map((m) => m.id).sort(), ["m1", "m2", "new-k4"]);
    assert.ok(DEFAULT_SETTINGS.deadVoterGraceSeconds + DEFAULT_SETTINGS.nodeTtlSeconds <= 8, "record lapse + grace leaves room for a 10 s replacement");
  });

  it("removes a learner that never started after the start timeout", async () => {
    const clock = fakeClock();
    // 3 alive nodes: the target is 3 voters, so the learner is needed, only it never starts.
    const kv = new FakeLeaderKv([member(1), member(4, true, false)], [record(1), record(4), record(5)], clock);
    const duties = new LeaderDuties(quiet, () => undefined, clock.now);
    await duties.run(kv, settings, "k1", () => undefined, false);
    clock.set(LEARNER_START_TIMEOUT_MS);
    await duties.run(kv, settings, "k1", () => undefined, true);
    assert.equal(kv.applied.length, 0);
    clock.set(LEARNER_START_TIMEOUT_MS + 1);
    await duties.run(kv, settings, "k1", () => undefined, true);
    assert.deepEqual(kv.applied.map((a) => a.kind), ["remove-stale-learner"]);
  });

  it("keeps the last pending flag when the KV does not answer", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([], [], clock);
    kv.members = async () => {
      throw new Error("deadline");
    };
    const duties = new LeaderDuties(quiet, () => undefined, clock.now);
    assert.equal((await duties.run(kv, settings, "k1", () => undefined, true)).voterChangePending, true);
    assert.equal((await duties.run(kv, settings, "k1", () => undefined, false)).voterChangePending, false);
  });
});

describe("leader duties: eviction", () => {
  it("runs an eviction pass at most every 3 s, with the watched copy of the config and evict_after in ms", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([member(1)], [record(1)], clock);
    const duties = new LeaderDuties(quiet, () => undefined, clock.now);
    let copy: FlatMapping | undefined = { a: "1" };
    for (const t of [0, 1_000, EVICTION_INTERVAL_MS - 1, EVICTION_INTERVAL_MS, EVICTION_INTERVAL_MS + 500, 2 * EVICTION_INTERVAL_MS]) {
      clock.set(t);
      if (t === 2 * EVICTION_INTERVAL_MS) copy = undefined;
      await duties.run(kv, settings, "k1", () => copy, false);
    }
    assert.deepEqual(
      kv.passes.map((p) => p.at - 1_000_000),
      [0, EVICTION_INTERVAL_MS, 2 * EVICTION_INTERVAL_MS],
    );
    assert.deepEqual(kv.passes[0]?.mapping, { a: "1" });
    assert.equal(kv.passes[2]?.mapping, undefined, "no copy: the pass reads the KV itself");
    assert.equal(kv.passes[0]?.evictAfterMs, 600_000);
  });

  it("a failed pass is logged, not thrown, and waits its interval like any other", async () => {
    const clock = fakeClock();
    const kv = new FakeLeaderKv([member(1)], [record(1)], clock);
    kv.failPass = true;
    const lines: string[] = [];
    const duties = new LeaderDuties({ ...quiet, debug: (m) => lines.push(m) }, () => undefined, clock.now);
    await duties.run(kv, settings, "k1", () => undefined, false);
    clock.set(1_000);
    await duties.run(kv, settings, "k1", () => undefined, false);
    assert.equal(kv.passes.length, 1);
    assert.ok(lines.some((l) => l.startsWith("eviction: etcd down")), lines.join("\n"));
  });
});

// ---- proxy upstreams and watch routing -----------------------------------------------------

const key = (c: string) => c.repeat(64);
const urlOf = (pk: string) => clientUrl(addressForKey(pk), 2379);

describe("proxy endpoint choice", () => {
  const voters = [urlOf(key("c")), urlOf(key("a")), urlOf(key("b"))];

  it("leaves out a voter whose node record vanished, sorted so the same set never restarts the proxy", () => {
    const gone = new Set([hostOfUrl(urlOf(key("a")))]);
    assert.deepEqual(proxyUpstreams(voters, gone), [urlOf(key("b")), urlOf(key("c"))].sort());
    assert.deepEqual(proxyUpstreams(voters, new Set()), [...voters].sort());
  });

  it("a running proxy takes added upstreams only after they were wanted for the settle time; a removal, at once", () => {
    const [a, b, c] = [urlOf(key("a")), urlOf(key("b")), urlOf(key("c"))].sort() as [string, string, string];
    assert.deepEqual(proxyEndpointsToRun([a, b], undefined, undefined, 0), { endpoints: [a, b], additionsSince: undefined }, "no proxy yet: all of them");
    // A voter promoted: kept out for the settle time, counted from when it was first wanted.
    let plan = proxyEndpointsToRun([a, b, c], [a, b], undefined, 1000);
    assert.deepEqual(plan, { endpoints: [a, b], additionsSince: 1000 });
    plan = proxyEndpointsToRun([a, b, c], plan.endpoints, plan.additionsSince, 1000 + PROXY_ADDITIONS_SETTLE_MS - 1);
    assert.deepEqual(plan.endpoints, [a, b]);
    plan = proxyEndpointsToRun([a, b, c], plan.endpoints, plan.additionsSince, 1000 + PROXY_ADDITIONS_SETTLE_MS);
    assert.deepEqual(plan, { endpoints: [a, b, c], additionsSince: undefined });
    // A voter left out (dead, or its record gone): at once, with whatever else is wanted now.
    assert.deepEqual(proxyEndpointsToRun([b, c], [a, b], 5000, 6000), { endpoints: [b, c], additionsSince: undefined });
    assert.deepEqual(proxyEndpointsToRun([a], [a, b], undefined, 0).endpoints, [a]);
    // Nothing changed: the same list (the proxy keeps running).
    assert.deepEqual(proxyEndpointsToRun([a, b], [a, b], undefined, 0), { endpoints: [a, b], additionsSince: undefined });
    // A voter left out and back (the upstream watch under load): one restart to leave it out, none to take it back until the settle time.
    plan = proxyEndpointsToRun([a, b], [a, b, c], undefined, 0);
    assert.deepEqual(plan.endpoints, [a, b]);
    assert.deepEqual(proxyEndpointsToRun([a, b, c], plan.endpoints, plan.additionsSince, 3000).endpoints, [a, b]);
    // A proxy on a single upstream (the one voter on its side of a partition) takes the others back at once.
    assert.deepEqual(proxyEndpointsToRun([a, b, c], [a], undefined, 0), { endpoints: [a, b, c], additionsSince: undefined });
  });

  it("keeps every voter when all of them lost their record (never none)", () => {
    const gone = new Set(voters.map(hostOfUrl));
    assert.deepEqual(proxyUpstreams(voters, gone), [...voters].sort());
  });

  it("the watch marks a record gone on delete and back on put, and wakes a proxy only for its own upstreams", () => {
    const s = { role: "proxy" as const, proxyEndpoints: [urlOf(key("a")), urlOf(key("b"))] };
    const del = routeChange("delete", `${KEYS.nodes}${key("a")}`, s);
    assert.deepEqual(del.record, { address: hostOfUrl(urlOf(key("a"))), gone: true });
    assert.equal(del.poke, true);
    assert.equal(del.hook, true);
    assert.equal(del.config, false, "node records are not config");
    assert.deepEqual(routeChange("put", `${KEYS.nodes}${key("a")}`, s).record, { address: hostOfUrl(urlOf(key("a"))), gone: false });
    assert.equal(routeChange("delete", `${KEYS.nodes}${key("d")}`, s).poke, false, "not an upstream of this proxy");
    assert.equal(routeChange("delete", `${KEYS.nodes}${key("a")}`, { role: "voter", proxyEndpoints: [] }).poke, false);
    assert.equal(routeChange("put", `${KEYS.nodes}${key("d")}`, { role: "leader", proxyEndpoints: [] }).poke, true, "the leader's voter manager needs records");
  });

  it("the watch wakes everyone for neighbour entries and voter changes; config keys patch the copy", () => {
    const s = { role: "voter" as const, proxyEndpoints: [] };
    const n = routeChange("put", `${KEYS.neighbours}${key("a")}/host`, s);
    assert.deepEqual([n.poke, n.hook, n.config], [true, true, true]);
    const v = routeChange("put", KEYS.voterLog, s);
    assert.deepEqual([v.poke, v.voterLog, v.hook, v.config], [true, true, false, false]);
    const c = routeChange("put", "raptiformica/meshnet/evict_after", s);
    assert.deepEqual([c.poke, c.hook, c.config, c.voterLog], [false, false, true, false]);
    // Link reports are live data under a member's lease, like node records: never config, no
    // hook (they change every few seconds), nobody woken.
    const l = routeChange("put", `raptiformica/links/${key("a")}`, s);
    assert.deepEqual([l.poke, l.hook, l.config, l.voterLog], [false, false, false, false]);
  });

  it("a link report (raptiformica/links/KEY) is no config, fires no hook and wakes no one, the leader neither", () => {
    for (const role of ["leader", "voter", "proxy"] as const) {
      for (const type of ["put", "delete"] as const) {
        const r = routeChange(type, `${KEYS.links}${key("a")}`, { role, proxyEndpoints: [urlOf(key("a"))] });
        assert.deepEqual([r.config, r.hook, r.poke, r.voterLog, r.record], [false, false, false, false, undefined], `${role} ${type}`);
      }
    }
  });
});

describe("a watched change applied to the agent", () => {
  it("patches the copy, counts voter changes, tracks vanished records, queues the hook and wakes the loop", () => {
    const state = initialState();
    state.role = "proxy";
    state.proxyEndpoints = [urlOf(key("a"))];
    const patched: string[] = [];
    let mirrors = 0;
    const hooked: ClusterChange[] = [];
    let pokes = 0;
    const d = { state, config: { patch: (_t: "put" | "delete", k: string) => void patched.push(k), scheduleMirror: () => void mirrors++ }, hooks: { push: (c: ClusterChange) => void hooked.push(c) }, poke: () => void pokes++ };
    applyChange("delete", `${KEYS.nodes}${key("a")}`, undefined, d);
    assert.deepEqual([...state.recordGone], [hostOfUrl(urlOf(key("a")))]);
    assert.deepEqual(hooked, [{ type: "delete", key: `${KEYS.nodes}${key("a")}` }]);
    assert.equal(pokes, 1);
    assert.deepEqual([patched.length, mirrors], [0, 0]);
    applyChange("put", `${KEYS.nodes}${key("a")}`, "{}", d);
    assert.equal(state.recordGone.size, 0);
    applyChange("put", KEYS.voterLog, "[]", d);
    assert.equal(state.voterLogChanges, 1);
    applyChange("put", "raptiformica/meshnet/evict_after", "60", d);
    assert.deepEqual(patched, ["raptiformica/meshnet/evict_after"]);
    assert.equal(mirrors, 1);
    assert.equal(pokes, 3);
  });
});

describe("KV endpoints of a learner", () => {
  const v = (i: number) => clientUrl(addr(i), 2379);
  it("a learner talks to the voters that have a node record, not to the dead voter it is about to replace", () => {
    const s = { role: "learner" as const, voterEndpoints: [v(1), v(2), v(3)], recordGone: new Set([hostOfUrl(v(3))]) };
    assert.deepEqual(kvEndpoints(s, 2379), [v(1), v(2)]);
  });
  it("all voters when none has a record, the local member otherwise", () => {
    const gone = new Set([v(1), v(2)].map(hostOfUrl));
    assert.deepEqual(kvEndpoints({ role: "learner", voterEndpoints: [v(1), v(2)], recordGone: gone }, 2379), [v(1), v(2)]);
    assert.deepEqual(kvEndpoints({ role: "voter", voterEndpoints: [v(1), v(2)], recordGone: gone }, 2379), ["https://127.0.0.1:2379"]);
  });
  it("the voters too while the local endpoint is the grpc-proxy of a member (promoted, or just removed), never for a proxy", () => {
    const none = new Set<string>();
    assert.deepEqual(kvEndpoints({ role: "voter", voterEndpoints: [v(1), v(2)], recordGone: none }, 2379, true), [v(1), v(2)]);
    assert.deepEqual(kvEndpoints({ role: undefined, voterEndpoints: [v(1), v(2)], recordGone: none }, 2379, true), [v(1), v(2)]);
    assert.deepEqual(kvEndpoints({ role: "proxy", voterEndpoints: [v(1), v(2)], recordGone: none }, 2379, true), ["https://127.0.0.1:2379"]);
    assert.deepEqual(kvEndpoints({ role: "voter", voterEndpoints: [], recordGone: none }, 2379, true), ["https://127.0.0.1:2379"]);
  });
  it("a promoted voter whose etcd still listens on the mesh only talks to that etcd alone, not to the voters (one may be dead); a learner never does", () => {
    const none = new Set<string>();
    const own = v(3);
    assert.deepEqual(kvEndpoints({ role: "voter", voterEndpoints: [v(1), v(2), own], recordGone: none }, 2379, true, own), [own]);
    assert.deepEqual(kvEndpoints({ role: "leader", voterEndpoints: [v(1), v(2), own], recordGone: none }, 2379, true, own), [own]);
    assert.deepEqual(kvEndpoints({ role: "learner", voterEndpoints: [v(1), v(2)], recordGone: none }, 2379, true, own), [v(1), v(2)]);
    assert.deepEqual(kvEndpoints({ role: undefined, voterEndpoints: [v(1), v(2)], recordGone: none }, 2379, true, own), [v(1), v(2)]);
    // Once etcd has 127.0.0.1 (no proxy), the local endpoint as always.
    assert.deepEqual(kvEndpoints({ role: "voter", voterEndpoints: [v(1), v(2), own], recordGone: none }, 2379, false, own), ["https://127.0.0.1:2379"]);
  });
});

describe("a voter removed while it was cut off (removedWhileCutOff)", () => {
  const me = member(3);
  const mine = me.peerURLs[0]!;
  it("is removed when its own etcd still lists it and the other voters' real list does not", () => {
    assert.equal(removedWhileCutOff([member(1), member(2), me], [member(1), member(2), member(4)], mine), true);
  });
  it("is not when the voters still list it, did not answer, or answered through a proxy (no peer URLs)", () => {
    assert.equal(removedWhileCutOff([member(1), member(2), me], [member(1), member(2), me], mine), false);
    assert.equal(removedWhileCutOff([member(1), member(2), me], undefined, mine), false);
    assert.equal(removedWhileCutOff([member(1), member(2), me], [{ ...member(9), peerURLs: [] }], mine), false);
  });
  it("is not when its own list does not have it either (the plan already sees that)", () => {
    assert.equal(removedWhileCutOff([member(1), member(2)], [member(1), member(2)], mine), false);
  });
});
