/**
 * An agent that exits for any reason runs again, on a member where systemd is not PID 1 (here a
 * lab node: a network namespace, like a netns instance or a container): its keeper starts it
 * again within seconds and the node is alive again with its role. A claim left from an earlier
 * boot (the cache dir survives reboots) whose pid now belongs to a live process calling itself
 * "agent" does not stop the agent from starting after a "reboot". And the keeper can be stopped
 * for good, taking its agent with it; `clean` leaves nothing running that could restart it.
 *
 * Cost (2 cores): about 20 s.
 */
import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LabCluster } from "../helpers/cluster.ts";
import { Lab, sleep, waitFor } from "../lab/index.ts";
import { runningAgent } from "../../src/node/agent-lock.ts";
import { nodePaths, type NodePaths } from "../../src/node/paths.ts";
import { processStart } from "../../src/node/process-identity.ts";

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "yggdrasil", "etcd"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the agent of a member without systemd", { skip: missing(), timeout: 300_000 }, () => {
  let lab: Lab;
  let c: LabCluster;
  let n1: NodePaths;
  const strays: ChildProcess[] = [];
  const row = async () => (await c.members(0)).members.find((m) => m.name === "n1");

  before(async () => {
    const t0 = performance.now();
    lab = await Lab.create({ nodes: 2, topology: "full" });
    c = await new LabCluster(lab).form(2);
    n1 = nodePaths(join(lab.nodes[1]!.cacheDir, "node"));
    log(`2-node lab cluster: ${secs(t0)}`);
  });

  after(async () => {
    strays.forEach((s) => s.kill("SIGKILL"));
    await lab?.destroy();
  });

  it("kill -9 of the agent: it runs again within seconds, and the node is alive again with its role", async () => {
    const role = (await row())?.role;
    assert.ok(role, "n1 has a role");
    for (let round = 1; round <= 2; round++) {
      const before = runningAgent(n1);
      assert.ok(before, "an agent runs on n1");
      const t0 = performance.now();
      process.kill(before, "SIGKILL");
      const after = await waitFor("a new agent on n1", () => {
        const p = runningAgent(n1);
        return p !== undefined && p !== before ? p : false;
      }, { timeoutMs: 10_000, intervalMs: 50 });
      const restarted = secs(t0);
      await waitFor("n1 alive with its role", async () => {
        const r = await row();
        return r?.status === "alive" && r.role === role;
      }, { timeoutMs: 30_000, intervalMs: 250 });
      log(`kill -9 #${round} (pid ${before} → ${after}): agent again after ${restarted}, n1 alive (${role}) after ${secs(t0)}`);
    }
  });

  it("after a reboot, a claim from the earlier boot naming a live process that calls itself agent does not keep the agent from starting", async () => {
    // What a reboot leaves: no process of the node runs, its cache dir is as it was — but the
    // pid in it now belongs to some other process whose command line says "agent".
    await lab.killNode(1);
    const impostor = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "ssh-agent", "agent"], { stdio: "ignore" });
    strays.push(impostor);
    await new Promise((r) => impostor.once("spawn", r));
    const ticks = processStart(impostor.pid!)!.start.split("/")[1];
    writeFileSync(n1.agentLock, `${impostor.pid} 00000000-0000-4000-8000-000000000000 ${ticks}\n`);
    writeFileSync(n1.agentPid, `${impostor.pid}\n`);
    const t0 = performance.now();
    const r = await c.rf(1, ["mesh", "--no-after-mesh", "--timeout", "45"], 60_000);
    assert.equal(r.exitCode, 0, `mesh after the reboot: ${r.stderr}`);
    const agent = runningAgent(n1);
    assert.ok(agent !== undefined && agent !== impostor.pid, `the agent runs (${agent}), not the impostor ${impostor.pid}`);
    assert.ok(alive(impostor.pid!), "the other process was left alone");
    await c.waitAlive(0, 2, 60_000);
    log(`reboot with a stale claim → mesh ready ${secs(t0)}, both alive`);
  });

  it("the keeper stopped (SIGTERM): the agent stops with it and nothing starts it again; mesh brings both back", async () => {
    const keeper = (JSON.parse(readFileSync(join(n1.runDir, "agent-keeper.pid"), "utf8")) as { pid: number }).pid;
    const agent = runningAgent(n1);
    assert.ok(agent !== undefined && alive(keeper));
    process.kill(keeper, "SIGTERM");
    await waitFor("keeper and agent gone", () => !alive(keeper) && runningAgent(n1) === undefined, { timeoutMs: 20_000, intervalMs: 100 });
    await sleep(3000);
    assert.equal(runningAgent(n1), undefined, "no agent was started again");
    await c.rfOk(1, ["mesh", "--no-after-mesh", "--timeout", "45"]);
    assert.ok(runningAgent(n1) !== undefined);
  });

  it("clean on the member stops keeper, agent and services, and nothing restarts them", async () => {
    const keeper = (JSON.parse(readFileSync(join(n1.runDir, "agent-keeper.pid"), "utf8")) as { pid: number }).pid;
    assert.ok(alive(keeper));
    await c.rfOk(1, ["clean"], 60_000);
    const pids = () => spawnSync("ip", ["netns", "pids", lab.nodes[1]!.ns], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    assert.deepEqual(pids(), [], "no process left in n1");
    await sleep(3000);
    assert.deepEqual(pids(), [], "none started again");
    assert.ok(!alive(keeper));
  });
});
