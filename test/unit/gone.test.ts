import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Etcd3 } from "etcd3";
import { KEY_ROOT, type FlatMapping } from "../../src/config/flatten.ts";
import { evictionPass, planGone, readGoneSince, type GonePlan } from "../../src/consensus/gone.ts";
import { readKvMapping } from "../../src/consensus/kv-config.ts";
import { nodeKey } from "../../src/consensus/registry.ts";
import { KEYS } from "../../src/consensus/settings.ts";
import { readVoterLog } from "../../src/consensus/voters.ts";
import { neighbourMapping, parseNeighbours, withoutNeighbours, type Neighbour } from "../../src/mesh/neighbours.ts";

const EVICT = 60_000;
const key = (c: string) => c.repeat(64);
const neighbour = (c: string, extra: Partial<Neighbour> = {}): Neighbour => ({
  publicKey: key(c),
  meshAddress: `200::${c}`,
  sshPort: 22,
  yggdrasilPort: 4863,
  name: `node-${c}`,
  ...extra,
});

/*
 * planGone, per neighbour: the state that matters is whether it is this node, alive (has a node
 * record) or not, and whether it carries a gone mark and how old that is against evict_after.
 * Every pair of neighbours over those states is planned together (a neighbour's plan must not
 * depend on another's), with and without a stale mark of a machine that is no neighbour.
 */
type Liveness = "self" | "alive" | "gone" | "left";
type Mark = "none" | "fresh" | "just-short" | "exactly" | "long";
const LIVENESS: readonly Liveness[] = ["self", "alive", "gone", "left"];
const MARKS: readonly Mark[] = ["none", "fresh", "just-short", "exactly", "long"];
const NOW = 10_000_000;
const markAge: Record<Exclude<Mark, "none">, number> = { fresh: 0, "just-short": EVICT - 1, exactly: EVICT, long: 10 * EVICT };

interface Case {
  readonly c: string;
  readonly liveness: Liveness;
  readonly mark: Mark;
}

/** The rule (from the original's evict_gone_machines and the meshnet/evict_after docs). */
function expected(cases: readonly Case[], strayMark: boolean): GonePlan {
  const mark: string[] = [];
  const unmark: string[] = [];
  const evict: { publicKey: string; name: string; goneMs: number }[] = [];
  for (const x of cases) {
    const here = x.liveness === "self" || x.liveness === "alive";
    if (here) {
      // A node that is back (or this node) loses its mark: a slow node is never dropped.
      if (x.mark !== "none") unmark.push(key(x.c));
    } else if (x.mark === "none") {
      // First seen gone (failed, or left on purpose): the clock starts now.
      mark.push(key(x.c));
    } else if (markAge[x.mark] >= EVICT) {
      evict.push({ publicKey: key(x.c), name: `node-${x.c}`, goneMs: markAge[x.mark] });
    }
  }
  if (strayMark) unmark.push(key("f"));
  return { mark, unmark, evict };
}

function plan(cases: readonly Case[], strayMark: boolean): GonePlan {
  const goneSince = new Map<string, number>();
  for (const x of cases) if (x.mark !== "none") goneSince.set(key(x.c), NOW - markAge[x.mark]);
  if (strayMark) goneSince.set(key("f"), NOW - 5);
  const self = cases.find((x) => x.liveness === "self");
  return planGone({
    neighbours: cases.map((x) => neighbour(x.c, x.liveness === "left" ? { left: true } : {})),
    alive: new Set(cases.filter((x) => x.liveness === "alive").map((x) => key(x.c))),
    goneSince,
    self: self ? key(self.c) : key("e"),
    now: NOW,
    evictAfterMs: EVICT,
  });
}

const sorted = (p: GonePlan) => ({
  mark: [...p.mark].sort(),
  unmark: [...p.unmark].sort(),
  evict: [...p.evict].sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1)),
});

describe("gone marks: the plan for every neighbour state", () => {
  it("marks, unmarks and evicts by the rule for every pair of neighbour states", () => {
    let n = 0;
    for (const l1 of LIVENESS) {
      for (const m1 of MARKS) {
        for (const l2 of LIVENESS) {
          if (l1 === "self" && l2 === "self") continue;
          for (const m2 of MARKS) {
            for (const stray of [false, true]) {
              const cases: Case[] = [
                { c: "a", liveness: l1, mark: m1 },
                { c: "b", liveness: l2, mark: m2 },
              ];
              assert.deepEqual(sorted(plan(cases, stray)), sorted(expected(cases, stray)), JSON.stringify({ cases, stray }));
              n++;
            }
          }
        }
      }
    }
    assert.equal(n, (4 * 5 * 4 * 5 - 5 * 5) * 2);
  });

  it("names an evicted neighbour without a name by the start of its key", () => {
    const p = planGone({
      neighbours: [{ ...neighbour("a"), name: undefined } as Neighbour],
      alive: new Set(),
      goneSince: new Map([[key("a"), NOW - EVICT]]),
      self: key("e"),
      now: NOW,
      evictAfterMs: EVICT,
    });
    assert.deepEqual(p.evict, [{ publicKey: key("a"), name: "aaaaaaaaaaaa", goneMs: EVICT }]);
  });

  it("an eviction removes every key of that neighbour and nothing else", () => {
    const m: FlatMapping = { ...neighbourMapping(neighbour("a")), ...neighbourMapping(neighbour("b")), [`${KEY_ROOT}/other`]: "x" };
    // A neighbour whose key starts like another's stays.
    const similar = `${KEY_ROOT}/meshnet/neighbours/${key("a")}0/mesh_address`;
    m[similar] = "200::99";
    const out = withoutNeighbours(m, [key("a")]);
    assert.ok(parseNeighbours(m).some((n) => n.publicKey === key("a")), "a copy: the mapping given is not changed");
    assert.deepEqual(Object.keys(out).filter((k) => k.includes(key("a"))), [similar]);
    assert.deepEqual(parseNeighbours(out).map((n) => n.publicKey), [key("b")]);
    assert.equal(out[`${KEY_ROOT}/other`], "x");
  });
});

/** A free TCP port on loopback (closed again before etcd takes it). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const haveEtcd = spawnSync("sh", ["-c", "command -v etcd"]).status === 0;

/*
 * The eviction pass against a real (single-member, loopback, plain-HTTP) etcd, with the clock
 * passed in: marks are written with the time first seen gone, a neighbour is evicted on the
 * first pass at or after evict_after, one that came back is unmarked and its clock restarts.
 */
describe("eviction pass against a real etcd, with a fake clock", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  let dir = "";
  let etcd: ChildProcess | undefined;
  let client: Etcd3;
  const self = key("a");
  const log: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "rf-gone-"));
    const [cp, pp] = [await freePort(), await freePort()];
    etcd = spawn(
      "etcd",
      [
        "--name", "t",
        "--data-dir", join(dir, "data"),
        "--listen-client-urls", `http://127.0.0.1:${cp}`,
        "--advertise-client-urls", `http://127.0.0.1:${cp}`,
        "--listen-peer-urls", `http://127.0.0.1:${pp}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${pp}`,
        "--initial-cluster", `t=http://127.0.0.1:${pp}`,
      ],
      { stdio: "ignore" },
    );
    client = new Etcd3({ hosts: `http://127.0.0.1:${cp}` });
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        await client.put(`${KEY_ROOT}/raptiformica_api_version`).value("0.1");
        break;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (const c of ["a", "b", "c", "d"]) {
      for (const [k, v] of Object.entries(neighbourMapping(neighbour(c)))) await client.put(k).value(v);
    }
    // a is this node (no record needed), b is alive, c and d have no record.
    await client.put(nodeKey(key("b"))).value(JSON.stringify({ publicKey: key("b"), name: "node-b" }));
    // A mark left over from a machine that is no neighbour any more.
    await client.put(`${KEYS.gone}${key("f")}`).value("5");
  });

  after(async () => {
    client?.close();
    if (etcd?.pid !== undefined && etcd.exitCode === null) {
      const exited = new Promise((r) => etcd?.once("exit", r));
      etcd.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const pass = (now: number) => evictionPass(client, { self, evictAfterMs: EVICT, now, log: (l) => log.push(l) });
  const neighbourKeys = async () => parseNeighbours(await readKvMapping(client)).map((n) => n.publicKey[0]);

  it("first pass: marks the neighbours without a record with the pass time, drops the stray mark", async () => {
    const t0 = 1_000_000;
    assert.deepEqual(await pass(t0), []);
    assert.deepEqual(await readGoneSince(client), new Map([[key("c"), t0], [key("d"), t0]]));
  });

  it("a later pass before evict_after keeps the first time; a node that came back is unmarked", async () => {
    await client.put(nodeKey(key("d"))).value(JSON.stringify({ publicKey: key("d"), name: "node-d" }));
    assert.deepEqual(await pass(1_000_000 + EVICT - 1), []);
    assert.deepEqual(await readGoneSince(client), new Map([[key("c"), 1_000_000]]));
    assert.deepEqual(await neighbourKeys(), ["a", "b", "c", "d"]);
  });

  it("the node that came back and went again starts a new clock", async () => {
    await client.delete().key(nodeKey(key("d")));
    const t1 = 1_000_000 + EVICT;
    const evicted = await pass(t1);
    assert.deepEqual(evicted.map((e) => e.name), ["node-c"]);
    assert.deepEqual(await readGoneSince(client), new Map([[key("d"), t1]]));
    assert.deepEqual(await neighbourKeys(), ["a", "b", "d"]);
    assert.deepEqual(log, ["evicted node-c (gone for 60 s)"]);
    assert.deepEqual((await readVoterLog(client)).map((e) => [e.time, e.change]), [[new Date(t1).toISOString(), "evicted node-c (gone for 60 s)"]]);
    // d was marked at t1: not evicted one tick short of evict_after from then, evicted at it.
    assert.deepEqual(await pass(t1 + EVICT - 1), []);
    assert.deepEqual((await pass(t1 + EVICT)).map((e) => e.name), ["node-d"]);
    assert.deepEqual(await neighbourKeys(), ["a", "b"]);
    assert.deepEqual(await readGoneSince(client), new Map());
  });

  it("never marks this node, record or not, nor a live one", async () => {
    assert.deepEqual(await pass(10 * EVICT + 1_000_000), []);
    assert.deepEqual(await readGoneSince(client), new Map());
    assert.deepEqual(await neighbourKeys(), ["a", "b"]);
  });
});
