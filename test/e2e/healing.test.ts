/**
 * Self-healing with real processes in the lab: dead voters replaced, the leader killed, a
 * partition, a reboot. Each fault test writes a sequence of keys before and during the fault
 * and reads every acknowledged one afterwards: no committed key may be lost. About 3 minutes.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Lab, waitFor } from "../lab/index.ts";
import { LabCluster } from "../helpers/cluster.ts";

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "yggdrasil", "etcd", "etcdctl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}
const skip = missing();

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.destroy();
});

type Roles = Record<string, { role?: string; status: string }>;

async function roles(c: LabCluster, from: number): Promise<Roles> {
  const m = await c.members(from);
  return Object.fromEntries(m.members.map((x) => [x.name, { ...(x.role ? { role: x.role } : {}), status: x.status }]));
}

function healthyVoters(r: Roles): string[] {
  return Object.entries(r)
    .filter(([, v]) => v.status === "alive" && (v.role === "voter" || v.role === "leader"))
    .map(([k]) => k);
}

/** Writes seq/<prefix>-<n> from node `on` until stopped; remembers which writes were acknowledged. */
function writer(c: LabCluster, on: () => number, prefix: string) {
  const acked: string[] = [];
  let stop = false;
  const done = (async () => {
    for (let n = 0; !stop && n < 10_000; n++) {
      const key = `seq/${prefix}-${String(n).padStart(4, "0")}`;
      const r = await c.rf(on(), ["config", "set", key, String(n)], 15_000);
      if (r.exitCode === 0 && !/KV is unreachable/.test(r.stderr)) acked.push(key);
    }
  })();
  return {
    acked,
    /**
     * Waits until `count` more writes than now were acknowledged: "writes happened (before,
     * during, after the fault)" as a count, not as a guess of how long they take.
     */
    async more(count: number, when: string): Promise<void> {
      const target = acked.length + count;
      await waitFor(`${count} more acknowledged writes ${when}`, () => acked.length >= target || (stop ? Promise.reject(new Error("the writer stopped")) : false), {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

/**
 * Runs `wait`; when it fails, the error gets what the `nodes`' agents logged about voters,
 * learners, records and the failure watch (the last 25 such lines each), so a replacement that
 * did not happen says where it stopped.
 */
async function withVoterLog<T>(lab: Lab, nodes: readonly number[], wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (e) {
    const said = nodes.map((i) => {
      let lines: string[] = [];
      try {
        lines = readFileSync(join(lab.nodes[i]!.cacheDir, "node", "log", "agent.log"), "utf8").split("\n");
      } catch (err) {
        lines = [`(no agent.log: ${String(err)})`];
      }
      const voterLines = lines.filter((l) => /voter|learner|leader|record|failure watch|quorum|promot|removed/i.test(l)).slice(-25);
      return `n${i}:\n  ${voterLines.join("\n  ")}`;
    });
    throw new Error(`${e instanceof Error ? e.message : String(e)}\nagent logs:\n${said.join("\n")}`, { cause: e });
  }
}

async function assertAllPresent(c: LabCluster, on: number, keys: readonly string[]): Promise<void> {
  assert.ok(keys.length > 0, "no write was acknowledged at all");
  await waitFor(
    `every acknowledged key readable on n${on}`,
    async () => {
      const shown = JSON.parse(await c.rfOk(on, ["config", "show", "seq", "--json"])) as Record<string, string>;
      const missingKeys = keys.filter((k) => shown[`raptiformica/${k}`] === undefined);
      if (missingKeys.length > 0) throw new Error(`${missingKeys.length} of ${keys.length} acknowledged keys missing, e.g. ${missingKeys.slice(0, 3).join(", ")}`);
      return true;
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  );
}

describe("voter replacement", { skip, timeout: 300_000 }, () => {
  it("a killed voter, then the killed leader, are replaced: writes go on, back to 3 voters", async () => {
    const lab = await Lab.create({ nodes: 5, topology: "full" });
    labs.push(lab);
    const c = await new LabCluster(lab).form(5, {
      config: { "meshnet/etcd/max_voters": "3" },
      joins: "together",
      meshTimeoutMs: 120_000,
      voters: 3,
      votersTimeoutMs: 60_000,
    });

    const r0 = await roles(c, 0);
    const leader = Number(Object.entries(r0).find(([, v]) => v.role === "leader")?.[0].slice(1));
    const follower = Number(Object.entries(r0).find(([, v]) => v.role === "voter")?.[0].slice(1));
    const survivors = [0, 1, 2, 3, 4].filter((i) => i !== leader && i !== follower);
    // Write from a node that stays up the whole time.
    const w = writer(c, () => survivors[0]!, "voters");
    await w.more(3, "before the follower dies");

    /** Kills node `dead`, then waits (≤ 60 s) for 3 healthy voters without it, as `survivors[0]` sees them; the live nodes' voter log lines on failure. */
    const killAndWaitForThreeVoters = async (dead: number, what: string, live: readonly number[]) => {
      await lab.killNode(dead);
      await withVoterLog(lab, live, () =>
        waitFor(
          `3 healthy voters again after the ${what} died`,
          async () => {
            const r = await roles(c, survivors[0]!);
            const v = healthyVoters(r);
            if (v.length !== 3 || v.includes(`n${dead}`)) throw new Error(JSON.stringify(r));
            return true;
          },
          { timeoutMs: 60_000, intervalMs: 500 },
        ),
      );
    };
    await killAndWaitForThreeVoters(follower, "follower", [leader, ...survivors]);
    await killAndWaitForThreeVoters(leader, "leader", survivors);
    await w.more(3, "with the replaced voters");
    await w.stop();
    await assertAllPresent(c, survivors[1]!, w.acked);

    // Every change was logged and is visible in members.
    const m = JSON.parse(await c.rfOk(survivors[0]!, ["members", "--json"])) as { voterChanges: { change: string }[] };
    const removed = m.voterChanges.filter((x) => /^removed voter/.test(x.change));
    assert.equal(removed.length, 2, JSON.stringify(m.voterChanges));
  });
});

async function threeNodeCluster(): Promise<LabCluster> {
  const lab = await Lab.create({ nodes: 3, topology: "full" });
  labs.push(lab);
  return new LabCluster(lab).form(3, { joins: "together", meshTimeoutMs: 120_000, voters: 3, votersTimeoutMs: 60_000 });
}

describe("fast failure detection", { skip, timeout: 240_000 }, () => {
  it("a killed member's record is ended by a voter that sees no live member linked to it, long before its lease's TTL", async () => {
    // node_ttl 30 s: the lease alone would keep the killed member's record for 30 s after its
    // last keep-alive, so a record gone within 20 s was ended by the failure watch (the voters
    // see its peerings go down in their link reports, probe it over the mesh, revoke its lease).
    const lab = await Lab.create({ nodes: 3, topology: "full" });
    labs.push(lab);
    const c = await new LabCluster(lab).form(3, { config: { "meshnet/etcd/node_ttl": "30" }, joins: "together", meshTimeoutMs: 120_000, voters: 3, votersTimeoutMs: 60_000 });
    // Every member's link report in place (written within 2 s of the agent's first tick).
    await waitFor("3 link reports", async () => (JSON.parse(await c.rfOk(0, ["links", "--json"])) as { members: { reportedAt?: number }[] }).members.filter((m) => m.reportedAt).length === 3, {
      timeoutMs: 30_000,
      intervalMs: 1000,
    });
    const victim = (await c.identity(2)).publicKey;
    const t0 = Date.now();
    await c.lab.killNode(2);
    await waitFor("n2 shown failed", async () => (await roles(c, 0))["n2"]?.status === "failed", { timeoutMs: 20_000, intervalMs: 250 });
    const seconds = (Date.now() - t0) / 1000;
    console.log(`# killed member shown failed after ${seconds.toFixed(1)} s (node_ttl 30 s)`);
    const logs = [0, 1].map((i) => readFileSync(join(lab.nodes[i]!.cacheDir, "node", "log", "agent.log"), "utf8")).join("\n");
    assert.match(logs, new RegExp(`${victim.slice(0, 16)} \\([0-9a-f:]+\\): no live member reports an up link to it and it did not answer over the mesh within 1000 ms: its node record is ended now`));
    // The survivors go on: writes work and both are alive.
    await c.rfOk(0, ["config", "set", "seq/after-fast-failure", "yes"]);
    const r = await roles(c, 1);
    assert.equal(r["n0"]?.status, "alive");
    assert.equal(r["n1"]?.status, "alive");
  });
});

describe("partition", { skip, timeout: 240_000 }, () => {
  it("the minority side cannot write and says why; healed, it catches up and its queued change lands", async () => {
    const c = await threeNodeCluster();
    const w = writer(c, () => 0, "partition");
    await w.more(3, "before the partition");
    await c.lab.unplug(2);
    // The minority (n2 alone) has no quorum: members says so, a write is only queued locally.
    await waitFor(
      "n2 sees it has no quorum",
      async () => {
        const r = await c.rf(2, ["members", "--json"], 30_000);
        return r.exitCode === 1 && (JSON.parse(r.stdout) as { quorum: boolean }).quorum === false;
      },
      { timeoutMs: 40_000, intervalMs: 1000 },
    );
    const minority = await c.rf(2, ["config", "set", "seq/from-minority", "queued"], 30_000);
    assert.equal(minority.exitCode, 0, minority.stderr);
    assert.match(minority.stderr, /cluster KV is unreachable from this member: the change is in the local cache and queued/);
    await w.more(3, "on the majority side while n2 is cut off");
    await c.lab.plug(2);
    await c.waitAlive(2, 3, 60_000);
    await w.stop();
    await assertAllPresent(c, 2, w.acked);
    await waitFor("the minority's queued change reached the cluster", async () => (await c.rfOk(0, ["config", "get", "seq/from-minority"])).trim() === "queued", {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
  });
});

describe("reboot", { skip, timeout: 240_000 }, () => {
  it("a node whose every process was killed comes back with the same mesh address and as a voter again", async () => {
    const c = await threeNodeCluster();
    const before = await c.identity(1);
    const w = writer(c, () => 0, "reboot");
    await w.more(3, "before n1 is killed");
    await c.lab.killNode(1);
    await w.more(3, "while n1 is down");
    await c.rfOk(1, ["mesh", "--no-after-mesh"]);
    const after = await c.identity(1);
    assert.equal(after.meshAddress, before.meshAddress);
    await waitFor(
      "n1 alive and a voter again",
      async () => {
        const r = await roles(c, 0);
        return r["n1"]?.status === "alive" && (r["n1"]?.role === "voter" || r["n1"]?.role === "leader") && healthyVoters(r).length === 3;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await w.stop();
    await assertAllPresent(c, 1, w.acked);
  });
});

describe("quorum loss and recover", { skip, timeout: 300_000 }, () => {
  it("2 of 3 voters gone for good: members points to recover; recover restarts from the survivor; the others rejoin", async () => {
    const c = await threeNodeCluster();
    const w = writer(c, () => 0, "recover");
    await w.more(5, "before quorum is lost");
    await w.stop();
    await c.lab.killNode(1);
    await c.lab.killNode(2);

    const lost = await c.rf(0, ["members"], 30_000);
    assert.equal(lost.exitCode, 1);
    assert.match(lost.stderr, /raptiformica recover/);
    // recover refuses while the cluster still answers (checked on a healthy cluster elsewhere), here it runs.
    const rec = await c.rf(0, ["recover"], 120_000);
    assert.equal(rec.exitCode, 0, rec.stderr);
    assert.match(rec.stderr, /recovered: this member is now the only voter/);
    await assertAllPresent(c, 0, w.acked);
    await c.rfOk(0, ["config", "set", "seq/after-recover", "yes"]);

    // The machines come back (rebooted, same identity): they rejoin the recovered cluster.
    await c.rfOk(1, ["mesh", "--no-after-mesh"], 180_000);
    await c.rfOk(2, ["mesh", "--no-after-mesh"], 180_000);
    await waitFor(
      "3 alive and 3 voters after recover",
      async () => {
        const r = await roles(c, 0);
        if (healthyVoters(r).length !== 3) throw new Error(JSON.stringify(r));
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    await assertAllPresent(c, 2, [...w.acked, "seq/after-recover"]);
    const again = await c.rf(0, ["recover"], 30_000);
    assert.equal(again.exitCode, 1);
    assert.match(again.stderr, /The cluster has quorum/);
  });
});

describe("a moved node", { skip, timeout: 240_000 }, () => {
  it("gets a new address: its neighbour entry follows, the others re-peer, its mesh address stays", async () => {
    const c = await threeNodeCluster();
    const before = await c.identity(2);
    const oldAddress = c.lab.addressOf(2);
    const newAddress = "198.18.0.200";
    // The machine moves: its old address goes, a new one comes (like a new DHCP lease; removing
    // the old one after adding the new would take the new one along, as a secondary address).
    const del = await c.lab.exec(2, ["ip", "addr", "del", `${oldAddress}/16`, "dev", "seg0"]);
    assert.equal(del.exitCode, 0, del.stderr);
    const add = await c.lab.exec(2, ["ip", "addr", "add", `${newAddress}/16`, "dev", "seg0"]);
    assert.equal(add.exitCode, 0, add.stderr);
    await c.rfOk(2, ["advertise", newAddress]);
    await c.rfOk(2, ["members", "--rejoin"]);

    await waitFor(
      "n2's neighbour entry has its new host",
      async () => (await c.rfOk(0, ["config", "get", `meshnet/neighbours/${before.publicKey}/host`])).trim() === newAddress,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await waitFor(
      "n0 reaches n2's (unchanged) mesh address again",
      async () => (await c.lab.exec(0, ["ping", "-6", "-c1", "-W1", before.meshAddress], { timeoutMs: 5000 })).exitCode === 0,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.equal((await c.identity(2)).meshAddress, before.meshAddress);
    await c.waitAlive(0, 3, 60_000);
  });
});

describe("eviction", { skip, timeout: 240_000 }, () => {
  it("a member gone past meshnet/evict_after is evicted (not before); members --evict does it on demand", async () => {
    const c = await threeNodeCluster();
    await c.rfOk(0, ["config", "set", "meshnet/evict_after", "20"]);
    const gone = await c.identity(2);
    await c.lab.killNode(2);
    const t0 = Date.now();
    await waitFor("n2 failed", async () => (await roles(c, 0))["n2"]?.status === "failed", { timeoutMs: 30_000, intervalMs: 500 });
    // Still listed while within the grace period: a slow node is not dropped.
    if (Date.now() - t0 < 15_000) {
      const nothing = await c.rf(0, ["members", "--evict"], 30_000);
      assert.equal(nothing.exitCode, 0, nothing.stderr);
      assert.match(nothing.stderr, /nothing to evict/);
      assert.ok((await c.rfOk(0, ["config", "show", "meshnet/neighbours", "--json"])).includes(gone.publicKey));
    }
    await waitFor(
      "n2's neighbour entry evicted",
      async () => !(await c.rfOk(0, ["config", "show", "meshnet/neighbours", "--json"])).includes(gone.publicKey),
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    assert.ok(Date.now() - t0 >= 20_000, "evicted before evict_after");
    const m = JSON.parse(await c.rfOk(1, ["members", "--json"])) as { members: { name: string }[]; voterChanges: { change: string }[] };
    assert.ok(!m.members.some((x) => x.name === "n2"));
    assert.ok(m.voterChanges.some((x) => /^evicted /.test(x.change)), JSON.stringify(m.voterChanges));
  });
});

describe("link cut", { skip, timeout: 240_000 }, () => {
  it("a cut link in a ring where another path exists: traffic and writes keep flowing", async () => {
    // A ring 0–1, 1–2, 2–0; node 2 registered through node 1.
    const lab = await Lab.create({ nodes: 3, topology: { links: [[0, 1], [1, 2], [0, 2]] } as never });
    labs.push(lab);
    const c = await new LabCluster(lab).form(3, { via: "previous" });
    const target = (await c.identity(2)).meshAddress;
    const w = writer(c, () => 2, "linkcut");
    await w.more(3, "before the link is cut");
    await lab.cutLink(0, 2);
    await waitFor("0 pings 2 through 1", async () => (await lab.exec(0, ["ping", "-6", "-c1", "-W1", target], { timeoutMs: 5000 })).exitCode === 0, {
      timeoutMs: 30_000,
      intervalMs: 300,
    });
    await w.more(3, "with the link cut");
    await w.stop();
    await lab.restoreLink(0, 2);
    await assertAllPresent(c, 0, w.acked);
    await c.waitAlive(0, 3, 30_000);
  });
});
