import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { Etcd3, Range } from "etcd3";
import { KEY_ROOT } from "../../src/config/flatten.ts";
import { readKvConfig } from "../../src/consensus/kv-config.ts";
import { KEYS } from "../../src/consensus/settings.ts";
import { rangesOutside, watchRanges, type RangeWatch } from "../../src/consensus/watch-ranges.ts";
import { AGENT_WATCH, LINKS_WATCH } from "../../src/node/step-kv-session.ts";
import { etcdForSuite, haveEtcd } from "../helpers/etcd-single.ts";

const K = "a".repeat(64);
/** Keys of every kind under raptiformica/, and next to its excluded prefixes in byte order. */
const config = [`${KEY_ROOT}/raptiformica_api_version`, `${KEY_ROOT}/meshnet/neighbours/${K}/host`, `${KEY_ROOT}/server/headless/x`, `${KEY_ROOT}/voters/log`, `${KEY_ROOT}/links`, `${KEY_ROOT}/linksx`, `${KEY_ROOT}/jobs0`, `${KEY_ROOT}/zzz`];
const records = [`${KEY_ROOT}/nodes/${K}`];
const links = [`${KEY_ROOT}/links/${K}`];
const unwatched = [`${KEY_ROOT}/jobs/j/spec`, `${KEY_ROOT}/gone/${K}`];
const outside = ["raptiformica", "raptiformica0", "other/x"];

const inRanges = (ranges: ReturnType<typeof rangesOutside>, key: string) => ranges.filter((r) => r.includes(key)).length;

describe("watching all but some prefixes", () => {
  it("the agent's ranges hold each config key and node record once, and no link report, job, gone mark or key outside raptiformica/", () => {
    for (const k of [...config, ...records]) assert.equal(inRanges(AGENT_WATCH, k), 1, k);
    for (const k of [...links, ...unwatched, ...outside]) assert.equal(inRanges(AGENT_WATCH, k), 0, k);
    for (const k of links) assert.equal(inRanges(LINKS_WATCH, k), 1, k);
    for (const k of [...config, ...records, ...unwatched]) assert.equal(inRanges(LINKS_WATCH, k), 0, k);
  });

  it("leaves no empty range and refuses a prefix outside the root or inside another", () => {
    assert.equal(rangesOutside("r/", ["r/a/", "r/b/"]).length, 3);
    assert.equal(rangesOutside("r/", []).length, 1);
    // A first excluded prefix at the root's very start: no empty range before it.
    assert.deepEqual(
      rangesOutside("r/", ["r/"]).map((r) => [r.start.toString(), r.end.toString()]),
      [],
    );
    assert.throws(() => rangesOutside("r/", ["s/"]), /not under r\//);
    assert.throws(() => rangesOutside("r/", ["r/a/", "r/a/b/"]), /overlaps/);
  });
});

/** A client whose watchers are plain emitters, the n-th ready n × `delayMs` after it was asked for; `cancelled` counts cancels. */
function fakeClient(delayMs: number) {
  const made: (EventEmitter & { cancel(): Promise<void> })[] = [];
  let cancelled = 0;
  let asked = 0;
  const client = {
    watch: () => ({
      inRange: () => ({
        create: async () => {
          const n = ++asked;
          await new Promise((r) => setTimeout(r, n * delayMs));
          const w = Object.assign(new EventEmitter(), { cancel: async () => void cancelled++ });
          made.push(w);
          return w;
        },
      }),
    }),
  } as unknown as Etcd3;
  return { client, made, cancelled: () => cancelled };
}

describe("watchRanges", () => {
  const three = [new Range("r/a", "r/b"), new Range("r/c", "r/d"), new Range("r/e", "r/f")];

  it("a watcher etcd cancels while the others are being created fails the call, never calls failed before it returned, and cancels all", async () => {
    const f = fakeClient(30);
    let failedCalls = 0;
    const pending = watchRanges(f.client, three, { put: () => undefined, delete: () => undefined, failed: () => void failedCalls++ });
    // The first watcher exists; it is cancelled by etcd while the second is being made.
    while (f.made.length < 1) await new Promise((r) => setTimeout(r, 5));
    f.made[0]!.emit("error", new Error("mvcc: required revision has been compacted"));
    await assert.rejects(pending, /compacted/);
    assert.equal(failedCalls, 0);
    assert.equal(f.cancelled(), f.made.length, "every watcher made is cancelled, once");
  });

  it("once returned: one failed call for the first watcher cancelled, then nothing more", async () => {
    const f = fakeClient(1);
    const failed: unknown[] = [];
    const seen: string[] = [];
    await watchRanges(f.client, three, { put: (k) => seen.push(k), delete: () => undefined, failed: (e) => failed.push(e) });
    f.made[1]!.emit("put", { key: Buffer.from("r/c1"), value: Buffer.from("v"), mod_revision: "7" });
    f.made[1]!.emit("error", new Error("cancelled"));
    f.made[2]!.emit("error", new Error("cancelled too"));
    f.made[0]!.emit("put", { key: Buffer.from("r/a1"), value: Buffer.from("v"), mod_revision: "8" });
    assert.equal(failed.length, 1);
    assert.deepEqual(seen, ["r/c1"], "no events once the watch is dead");
    assert.equal(f.cancelled(), 3);
  });
});

describe("the agent's watch against a real etcd", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  const etcd = etcdForSuite();

  it("sees puts and deletes of config keys and node records, none of link reports, jobs or gone marks; a links watch sees those; cancelled, nothing", async () => {
    const seen: string[] = [];
    const seenLinks: string[] = [];
    const watch: RangeWatch = await watchRanges(etcd.client, AGENT_WATCH, { put: (k) => seen.push(`put ${k}`), delete: (k) => seen.push(`delete ${k}`), failed: (e) => assert.fail(String(e)) });
    const linksWatch = await watchRanges(etcd.client, LINKS_WATCH, { put: (k) => seenLinks.push(`put ${k}`), delete: (k) => seenLinks.push(`delete ${k}`), failed: (e) => assert.fail(String(e)) });
    const all = [...config, ...records, ...links, ...unwatched, ...outside];
    for (const k of all) await etcd.client.put(k).value("v");
    await etcd.client.delete().key(records[0]!);
    await etcd.client.delete().key(links[0]!);
    // The last write is a config key: once it is seen, every earlier event has come.
    await etcd.client.put(KEYS.maxVoters).value("3");
    const deadline = Date.now() + 5000;
    while (!seen.includes(`put ${KEYS.maxVoters}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen.sort(), [...config.map((k) => `put ${k}`), ...records.map((k) => `put ${k}`), `delete ${records[0]}`, `put ${KEYS.maxVoters}`].sort());
    assert.deepEqual(seenLinks, [`put ${links[0]}`, `delete ${links[0]}`]);
    await watch.cancel();
    await linksWatch.cancel();
    const before = seen.length + seenLinks.length;
    await etcd.client.put(config[0]!).value("w");
    await etcd.client.put(links[0]!).value("w");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.length + seenLinks.length, before, "nothing after cancel");
  });

  it("a watch from the config read's revision + 1 gets every change made between the read and the watch, each with its revision", async () => {
    const key = `${KEY_ROOT}/app/between`;
    await etcd.client.put(key).value("before");
    const read = await readKvConfig(etcd.client, 3000);
    assert.equal(read.mapping[key], "before");
    assert.ok(read.revision !== undefined && read.revision > 0n);
    // Written after the read, before the watch exists: a watch "from now" would miss these.
    const put = await etcd.client.put(key).value("between");
    await etcd.client.delete().key(key);
    const seen: string[] = [];
    const watch = await watchRanges(etcd.client, AGENT_WATCH, { put: (k, v, rev) => k === key && seen.push(`put ${v} @${rev}`), delete: (k, rev) => k === key && seen.push(`delete @${rev}`), failed: (e) => assert.fail(String(e)) }, 3000, read.revision! + 1n);
    await etcd.client.put(key).value("after");
    const deadline = Date.now() + 5000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await watch.cancel();
    const putRev = BigInt(put.header.revision);
    assert.deepEqual(seen.map((x) => x.replace(/@\d+/, "@")), ["put between @", "delete @", "put after @"]);
    assert.equal(seen[0], `put between @${putRev}`);
    assert.equal(seen[1], `delete @${putRev + 1n}`, "a delete event carries the revision of the delete");
  });
});
