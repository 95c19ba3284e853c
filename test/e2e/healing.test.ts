/**
 * Self-healing with real processes in the lab: dead voters replaced, the leader killed, a
 * partition, a reboot. Each fault test writes a sequence of keys before and during the fault
 * and reads every acknowledged one afterwards: no committed key may be lost. About 3 minutes.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
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
    async stop() {
      stop = true;
      await done;
    },
  };
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
    const c = new LabCluster(lab);
    await c.first(0);
    await c.rfOk(0, ["config", "set", "meshnet/etcd/max_voters", "3"]);
    for (const i of [1, 2, 3, 4]) await c.prepare(i);
    await Promise.all([1, 2, 3, 4].map((i) => c.rfOk(i, ["mesh", "--no-after-mesh"])));
    await c.waitAlive(0, 5, 60_000);
    await waitFor("3 voters", async () => healthyVoters(await roles(c, 0)).length === 3, { timeoutMs: 60_000, intervalMs: 500 });

    const r0 = await roles(c, 0);
    const leader = Number(Object.entries(r0).find(([, v]) => v.role === "leader")?.[0].slice(1));
    const follower = Number(Object.entries(r0).find(([, v]) => v.role === "voter")?.[0].slice(1));
    const survivors = [0, 1, 2, 3, 4].filter((i) => i !== leader && i !== follower);
    // Write from a node that stays up the whole time.
    const w = writer(c, () => survivors[0]!, "voters");
    await new Promise((r) => setTimeout(r, 2000));

    await lab.killNode(follower);
    await waitFor(
      "3 healthy voters again after the follower died",
      async () => {
        const r = await roles(c, survivors[0]!);
        const v = healthyVoters(r);
        if (v.length !== 3 || v.includes(`n${follower}`)) throw new Error(JSON.stringify(r));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

    await lab.killNode(leader);
    await waitFor(
      "3 healthy voters again after the leader died",
      async () => {
        const r = await roles(c, survivors[0]!);
        const v = healthyVoters(r);
        if (v.length !== 3 || v.includes(`n${leader}`)) throw new Error(JSON.stringify(r));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await new Promise((r) => setTimeout(r, 2000));
    await w.stop();
    await assertAllPresent(c, survivors[1]!, w.acked);

    // Every change was logged and is visible in members.
    const m = JSON.parse(await c.rfOk(survivors[0]!, ["members", "--json"])) as { voterChanges: { change: string }[] };
    const removed = m.voterChanges.filter((x) => /^removed voter/.test(x.change));
    assert.equal(removed.length, 2, JSON.stringify(m.voterChanges));
  });
});
