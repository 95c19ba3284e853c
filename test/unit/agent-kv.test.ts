import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { splitUsable, type FlatMapping } from "../../src/config/flatten.ts";
import type { KvConfig } from "../../src/consensus/kv-config.ts";
import { NodeRegistration, type LeaseClient, type NodeRecord, type RecordLease } from "../../src/consensus/registry.ts";
import { KEYS, resolveSettingsOnce } from "../../src/consensus/settings.ts";
import { ALLOWED_STALE_MS, AllowedKeysRefresh, LOCKOUT_RESTART_INTERVAL_MS } from "../../src/node/allowed-refresh.ts";
import { ConfigView, FOLLOWED_COPY_MAX_AGE_MS, KV_COPY_MAX_AGE_MS, type ConfigKv, type LocalConfigLike } from "../../src/node/config-view.ts";
import type { Logger } from "../../src/util/log.ts";

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, set: (ms: number) => void (t = start + ms) };
}
const quiet: Logger = { verbose: false, debug: () => undefined, info: () => undefined, warn: () => undefined };

// ---- lease-loss detection ----------------------------------------------------------------------

/** An etcd3 lease as the node record sees it: the test fires its events. */
class FakeLease implements RecordLease {
  readonly handlers = new Map<string, (arg: never) => void>();
  readonly puts: { key: string; value: string }[] = [];
  released = false;
  on(event: string, handler: (arg: never) => void): this {
    this.handlers.set(event, handler);
    return this;
  }
  emit(event: "lost" | "keepaliveSucceeded", arg?: unknown): void {
    (this.handlers.get(event) as ((a: unknown) => void) | undefined)?.(arg);
  }
  put(key: string) {
    return { value: (value: string) => ({ exec: async () => void this.puts.push({ key, value }) }) };
  }
  release(): void {
    this.released = true;
  }
  async revoke(): Promise<void> {}
}

class FakeLeases implements LeaseClient {
  readonly granted: { ttl: number; lease: FakeLease }[] = [];
  lease(ttl: number): FakeLease {
    const lease = new FakeLease();
    this.granted.push({ ttl, lease });
    return lease;
  }
  get current(): FakeLease {
    const last = this.granted.at(-1);
    if (!last) throw new Error("no lease granted");
    return last.lease;
  }
}

const rec: NodeRecord = { publicKey: "ab".repeat(32), name: "n1", meshAddress: "200::1", role: "proxy", startedAt: 1, hostname: "h", version: "0", yggdrasilMajor: "0.5" };

describe("node record: lease-loss detection", () => {
  it("keeps one lease and writes the record once while keep-alives succeed", async () => {
    const clock = fakeClock();
    const kv = new FakeLeases();
    const reg = new NodeRegistration(kv, 5, clock.now);
    await reg.ensure(rec);
    for (let t = 4_000; t <= 60_000; t += 4_000) {
      clock.set(t);
      kv.current.emit("keepaliveSucceeded", { TTL: "5" });
      await reg.ensure(rec);
    }
    assert.equal(kv.granted.length, 1);
    assert.equal(kv.granted[0]?.ttl, 5);
    assert.equal(kv.current.puts.length, 1);
    assert.equal(kv.current.puts[0]?.key, `${KEYS.nodes}${rec.publicKey}`);
  });

  it("before its etcd restarts, the record is moved onto a bridging lease nothing keeps alive; the next ensure puts it on a fresh lease", async () => {
    const kv = new FakeLeases();
    const reg = new NodeRegistration(kv, 5, fakeClock().now);
    assert.equal(await reg.hold(20), false, "nothing written yet: nothing to hold");
    await reg.ensure(rec);
    const first = kv.current;
    assert.equal(await reg.hold(20), true);
    const bridge = kv.current;
    assert.notEqual(bridge, first);
    assert.equal(kv.granted.at(-1)?.ttl, 20);
    assert.deepEqual(bridge.puts, [{ key: `${KEYS.nodes}${rec.publicKey}`, value: JSON.stringify(rec) }]);
    assert.equal(bridge.released, true, "the bridging lease is not kept alive");
    assert.equal(first.released, true, "the old lease is let go");
    await reg.ensure(rec);
    assert.equal(kv.granted.length, 3);
    assert.equal(kv.granted[2]?.ttl, 5);
    assert.deepEqual(kv.current.puts.map((p) => p.value), [JSON.stringify(rec)], "written again on a fresh lease, though unchanged");
  });

  it("a lease etcd3 reports lost is replaced and the record written again on the new one", async () => {
    const kv = new FakeLeases();
    const reg = new NodeRegistration(kv, 5, fakeClock().now);
    await reg.ensure(rec);
    const first = kv.current;
    first.emit("lost", new Error("gone"));
    await reg.ensure(rec);
    assert.equal(first.released, true);
    assert.equal(kv.granted.length, 2);
    assert.deepEqual(kv.current.puts.map((p) => p.value), [JSON.stringify(rec)]);
  });

  it("a keep-alive answered with TTL -1 (a grpc-proxy's answer for an expired lease) counts as lost", async () => {
    const kv = new FakeLeases();
    const reg = new NodeRegistration(kv, 5, fakeClock().now);
    await reg.ensure(rec);
    kv.current.emit("keepaliveSucceeded", { TTL: "-1" });
    await reg.ensure(rec);
    assert.equal(kv.granted.length, 2);
  });

  it("a lease with no good keep-alive for more than twice its TTL counts as lost (silent keep-alive stream)", async () => {
    const clock = fakeClock();
    const kv = new FakeLeases();
    const reg = new NodeRegistration(kv, 5, clock.now);
    await reg.ensure(rec);
    clock.set(10_000);
    await reg.ensure(rec);
    assert.equal(kv.granted.length, 1, "exactly 2 × TTL: not yet");
    clock.set(10_001);
    await reg.ensure(rec);
    assert.equal(kv.granted.length, 2);
    assert.equal(kv.current.puts.length, 1);
    // The new lease's clock starts when it is granted.
    clock.set(20_001);
    await reg.ensure(rec);
    assert.equal(kv.granted.length, 2);
  });
});

// ---- the allowed-keys refresh --------------------------------------------------------------------

describe("mesh: the allowed-keys refresh", () => {
  const links = ["k2", "k3"];
  const none = new Set<string>();

  it("restarts once a dialled neighbour's key has been missing and unconnected for 15 s", () => {
    const clock = fakeClock();
    const r = new AllowedKeysRefresh(clock.now);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false);
    clock.set(ALLOWED_STALE_MS);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false);
    clock.set(ALLOWED_STALE_MS + 1);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), true);
  });

  it("not for a key that is connected anyway, nor for one this node does not dial", () => {
    const clock = fakeClock();
    const r = new AllowedKeysRefresh(clock.now);
    r.due({ missing: ["k2", "k9"], connected: none, links, running: true });
    clock.set(60_000);
    assert.equal(r.due({ missing: ["k2"], connected: new Set(["k2"]), links, running: true }), false);
    assert.equal(r.due({ missing: ["k9"], connected: none, links, running: true }), false);
  });

  it("counts how long the neighbour stays unconnected, not how long its key has been missing", () => {
    // B's key missing for minutes while the peering dialled to it is up; then the link drops
    // for a moment (both ends paused): no restart, unless it then stays down 15 s.
    const clock = fakeClock();
    const r = new AllowedKeysRefresh(clock.now);
    const up = new Set(["k2"]);
    assert.equal(r.due({ missing: ["k2"], connected: up, links, running: true }), false);
    clock.set(300_000);
    assert.equal(r.due({ missing: ["k2"], connected: up, links, running: true }), false);
    clock.set(305_000);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false, "down for a moment after minutes missing");
    clock.set(310_000);
    assert.equal(r.due({ missing: ["k2"], connected: up, links, running: true }), false);
    clock.set(315_000);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false, "down again: counted from now");
    clock.set(315_000 + ALLOWED_STALE_MS);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false);
    clock.set(315_001 + ALLOWED_STALE_MS);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), true, "unconnected at every look for 15 s");
  });

  it("the 15 s start over when no key is missing for a moment", () => {
    const clock = fakeClock();
    const r = new AllowedKeysRefresh(clock.now);
    r.due({ missing: ["k2"], connected: none, links, running: true });
    clock.set(10_000);
    r.due({ missing: [], connected: none, links, running: true });
    clock.set(11_000);
    r.due({ missing: ["k2"], connected: none, links, running: true });
    clock.set(20_000);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false);
    clock.set(26_001);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), true);
  });

  it("at most one such restart per 2 minutes, counted only when yggdrasil runs", () => {
    const clock = fakeClock();
    const r = new AllowedKeysRefresh(clock.now);
    r.due({ missing: ["k2"], connected: none, links, running: true });
    clock.set(20_000);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: false }), true, "not running: nothing restarted, nothing counted");
    clock.set(21_000);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), true);
    clock.set(21_000 + LOCKOUT_RESTART_INTERVAL_MS);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), false);
    clock.set(21_001 + LOCKOUT_RESTART_INTERVAL_MS);
    assert.equal(r.due({ missing: ["k2"], connected: none, links, running: true }), true);
  });
});

// ---- the KV copy of the config view -------------------------------------------------------------

const config = (extra: FlatMapping = {}): FlatMapping => ({
  "raptiformica/server/headless/x": "1",
  "raptiformica/compute/docker/x": "1",
  "raptiformica/platform/default/x": "1",
  ...extra,
});

class FakeConfigKv implements ConfigKv {
  reads = 0;
  fail = false;
  /** The revision a read reports (none: a KV that gives none). */
  revision: bigint | undefined;
  /** Runs after the read took its snapshot and before it answers (what arrives while a read is under way). */
  duringRead: (() => void) | undefined;
  constructor(public mapping: FlatMapping) {}
  /** As the real KV is read: the keys no config can hold are split off (kv-config.ts). */
  async read(): Promise<KvConfig> {
    this.reads++;
    if (this.fail) throw new Error("deadline");
    const answer = { ...splitUsable(this.mapping), revision: this.revision };
    this.duringRead?.();
    return answer;
  }
  async update(change: (m: FlatMapping) => FlatMapping): Promise<FlatMapping> {
    if (this.fail) throw new Error("deadline");
    this.mapping = change({ ...this.mapping });
    return this.mapping;
  }
}

function fakeLocal(mapping: FlatMapping): LocalConfigLike & { mapping: FlatMapping; mirrored: number } {
  const local = {
    mapping,
    mirrored: 0,
    snapshot: () => ({ mapping: local.mapping, origin: "mutable-config" as const }),
    update: async (change: (m: FlatMapping) => FlatMapping) => (local.mapping = change({ ...local.mapping })),
    store: {
      update: async (_read: () => FlatMapping, change: (m: FlatMapping) => FlatMapping) => {
        local.mirrored++;
        return (local.mapping = change({ ...local.mapping }));
      },
    },
  };
  return local as unknown as LocalConfigLike & { mapping: FlatMapping; mirrored: number };
}

describe("config view: the KV copy", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-config-view-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const view = (kv: FakeConfigKv | undefined, local: LocalConfigLike, clock: { now: () => number }) =>
    new ConfigView({ local, log: quiet, lastGoodSettingsPath: join(dir, "settings.json"), kv: () => kv, openKv: () => kv, now: clock.now });

  it("reads the KV once, then trusts the watched copy for 30 s", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1" }));
    const v = view(kv, fakeLocal(config()), clock);
    assert.equal((await v.mapping())["raptiformica/a"], "1");
    kv.mapping["raptiformica/a"] = "2";
    clock.set(KV_COPY_MAX_AGE_MS - 1);
    assert.equal((await v.mapping())["raptiformica/a"], "1");
    assert.equal(kv.reads, 1);
    clock.set(KV_COPY_MAX_AGE_MS);
    assert.equal((await v.mapping())["raptiformica/a"], "2", "a watch that missed events is caught up within 30 s");
    assert.equal(kv.reads, 2);
  });

  it("a copy a watch follows from its revision is read again only after 10 minutes, and a change it already holds is not applied again", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1" }));
    kv.revision = 50n;
    const v = view(kv, fakeLocal(config()), clock);
    await v.mapping();
    assert.equal(v.copyRevision, 50n);
    assert.equal(v.followed, false);
    v.follow(50n); // a watch from revision 51
    assert.equal(v.followed, true);
    kv.mapping["raptiformica/a"] = "2";
    clock.set(KV_COPY_MAX_AGE_MS);
    assert.equal((await v.mapping())["raptiformica/a"], "1", "no re-read at 30 s while followed");
    assert.equal(kv.reads, 1);
    v.patch("put", "raptiformica/a", "old", 49n);
    assert.equal(v.kvCopy?.["raptiformica/a"], "1", "a change at or before the read's revision is in the copy already");
    v.patch("put", "raptiformica/a", "2", 51n);
    assert.equal((await v.mapping())["raptiformica/a"], "2");
    clock.set(FOLLOWED_COPY_MAX_AGE_MS);
    await v.mapping();
    assert.equal(kv.reads, 2, "read again after 10 minutes even while followed");
    // Read again at a later revision while the same watch runs: still followed.
    kv.revision = 60n;
    v.invalidate();
    await v.mapping();
    assert.equal(v.followed, true);
    v.unfollow();
    assert.equal(v.followed, false);
    clock.set(FOLLOWED_COPY_MAX_AGE_MS + KV_COPY_MAX_AGE_MS);
    await v.mapping();
    assert.equal(kv.reads, 4, "the 30 s bound again once the watch is gone");
  });

  it("a copy read before the revision a watch took up from is not followed (changes in between were not seen)", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1" }));
    kv.revision = 40n;
    const v = view(kv, fakeLocal(config()), clock);
    await v.mapping();
    v.follow(45n);
    assert.equal(v.followed, false);
    clock.set(KV_COPY_MAX_AGE_MS);
    await v.mapping();
    assert.equal(kv.reads, 2);
    assert.equal(v.followed, false, "read at revision 40 again (the fake's): still not followed");
  });

  it("a watched change patches the copy without a read and without making it younger", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1" }));
    const v = view(kv, fakeLocal(config()), clock);
    await v.mapping();
    clock.set(20_000);
    v.patch("put", "raptiformica/b", "x");
    v.patch("delete", "raptiformica/a");
    v.patch("put", `${KEYS.nodes}${"ab".repeat(32)}`, "{}");
    const m = await v.mapping();
    assert.equal(m["raptiformica/b"], "x");
    assert.equal(m["raptiformica/a"], undefined);
    assert.equal(m[`${KEYS.nodes}${"ab".repeat(32)}`], undefined, "node records are not config");
    assert.equal(kv.reads, 1);
    clock.set(KV_COPY_MAX_AGE_MS);
    await v.mapping();
    assert.equal(kv.reads, 2);
  });

  it("watched changes are put together once, into a new object: a mapping handed out is never changed, and settings are resolved again only after a setting changed", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1", [KEYS.nodeTtl]: "5" }));
    const v = view(kv, fakeLocal(config()), clock);
    const first = await v.mapping();
    const firstResolved = resolveSettingsOnce(first);
    v.patch("put", "raptiformica/meshnet/neighbours/ab/host", "192.0.2.1");
    v.patch("put", "raptiformica/a", "2");
    v.patch("delete", "raptiformica/a");
    v.patch("put", "raptiformica/a", "3");
    assert.equal(v.copyValue("raptiformica/a"), "3", "a key reads through the changes not yet put together");
    assert.equal(v.copyValue(`${KEYS.nodeTtl}`), "5");
    assert.equal(first["raptiformica/a"], "1", "the mapping handed out earlier is unchanged");
    const second = await v.mapping();
    assert.notEqual(second, first);
    assert.equal(second["raptiformica/a"], "3");
    assert.equal(second["raptiformica/meshnet/neighbours/ab/host"], "192.0.2.1");
    assert.equal(await v.mapping(), second, "no change since: the same object");
    assert.ok(Object.isFrozen(first) && Object.isFrozen(second), "copies are frozen");
    assert.throws(() => {
      (second as Record<string, string>)["raptiformica/a"] = "changed in place";
    }, TypeError);
    assert.equal(v.kvCopy, second);
    assert.equal(resolveSettingsOnce(second), firstResolved, "no setting changed: the settings carry over");
    v.patch("put", KEYS.nodeTtl, "9");
    const third = await v.mapping();
    assert.notEqual(resolveSettingsOnce(third), firstResolved);
    assert.equal(resolveSettingsOnce(third).settings.nodeTtlSeconds, 9);
    v.patch("put", "raptiformica/meshnet/etcd/node_tll", "9");
    assert.equal(resolveSettingsOnce(await v.mapping()).problems.length, 1, "a typo in a setting folder is reported (it affects the settings)");
  });

  it("a change that arrives while a read is under way is in the copy that read makes, when the read is older than the change", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1", "raptiformica/b": "1" }));
    kv.revision = 50n;
    const v = view(kv, fakeLocal(config()), clock);
    await v.mapping();
    v.follow(50n);
    // A write elsewhere invalidated the copy (or its bound ran out): the next mapping() reads
    // again at revision 51, and changes 52 and 53 come through the watch before that read answers.
    v.invalidate();
    kv.revision = 51n;
    kv.duringRead = () => {
      v.patch("put", "raptiformica/a", "2", 52n);
      v.patch("delete", "raptiformica/b", undefined, 53n);
      v.patch("put", "raptiformica/c", "old", 51n); // in the read already
    };
    const m = await v.mapping();
    assert.equal(m["raptiformica/a"], "2", "the change after the read's revision is not lost");
    assert.equal(m["raptiformica/b"], undefined);
    assert.equal(v.followed, true, "and the copy is trusted for its long bound");
    kv.duringRead = undefined;
    kv.revision = 60n;
    kv.mapping["raptiformica/a"] = "3";
    v.invalidate();
    assert.equal((await v.mapping())["raptiformica/a"], "3", "a read newer than the change wins");
  });

  it("the mirror writes a patched copy without walking it again, and refuses one a deletion broke", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "1" }));
    const local = fakeLocal(config({ "raptiformica/a": "cache" }));
    const v = view(kv, local, clock);
    await v.mapping();
    v.patch("put", "raptiformica/a", "2");
    await v.mirror();
    assert.equal(local.mirrored, 1);
    assert.equal(local.mapping["raptiformica/a"], "2");
    v.patch("delete", "raptiformica/server/headless/x"); // the only server/ key
    await v.mirror();
    assert.equal(local.mirrored, 1, "a copy without server/ keys is not mirrored");
    assert.equal(local.mapping["raptiformica/server/headless/x"], "1");
    v.patch("put", "raptiformica/server/headless/x", "again");
    await v.mirror();
    assert.equal(local.mirrored, 2, "mirrored again once it is whole");
  });

  it("a key no config can hold is skipped with one warning naming it, from a read or a watched put, and never mirrored", async () => {
    const clock = fakeClock();
    const bad = "raptiformica/app/a b";
    const kv = new FakeConfigKv(config({ "raptiformica/a": "kv", [bad]: "v" }));
    const local = fakeLocal(config({ "raptiformica/a": "cache" }));
    const warnings: string[] = [];
    const v = new ConfigView({ local, log: { ...quiet, warn: (m) => void warnings.push(m) }, lastGoodSettingsPath: join(dir, "settings.json"), kv: () => kv, openKv: () => kv, now: clock.now });
    const m = await v.mapping();
    assert.equal(m["raptiformica/a"], "kv", "the KV is still the config");
    assert.equal(m[bad], undefined);
    assert.deepEqual(warnings, [`Config key "${bad}" in the cluster KV is skipped: it contains white space. Every member ignores it; remove it with \`raptiformica config delete '${bad}'\` and fix whatever wrote it.`]);
    clock.set(KV_COPY_MAX_AGE_MS);
    await v.mapping();
    assert.equal(warnings.length, 1, "warned once while it stays");
    const slashes = "raptiformica//platform/default/hooks/x/y/command";
    v.patch("put", slashes, "touch /x");
    v.patch("put", "raptiformica/b", "1");
    assert.equal(v.kvCopy?.[slashes], undefined);
    assert.equal(v.kvCopy?.["raptiformica/b"], "1");
    assert.match(warnings[1] ?? "", /raptiformica\/\/platform.* is skipped: it has an empty path segment/);
    await v.mirror();
    assert.equal(local.mirrored, 1);
    assert.equal(local.mapping["raptiformica/a"], "kv");
    assert.deepEqual(Object.keys(local.mapping).filter((k) => k.includes(" ") || k.includes("//")), []);
  });

  it("falls back to the local cache when the KV does not answer, and a write invalidates the copy", async () => {
    const clock = fakeClock();
    const kv = new FakeConfigKv(config({ "raptiformica/a": "kv" }));
    const local = fakeLocal(config({ "raptiformica/a": "cache" }));
    const v = view(kv, local, clock);
    assert.equal((await v.mapping())["raptiformica/a"], "kv");
    await v.write((m) => ({ ...m, "raptiformica/a": "written" }));
    assert.equal((await v.mapping())["raptiformica/a"], "written");
    assert.equal(kv.reads, 2);
    kv.fail = true;
    v.invalidate();
    assert.equal((await v.mapping())["raptiformica/a"], "cache");
    await v.write((m) => ({ ...m, "raptiformica/a": "offline" }));
    assert.equal(local.mapping["raptiformica/a"], "offline", "a failed KV write goes to the local cache");
  });
});
