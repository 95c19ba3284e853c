/**
 * The agent on docker members (docker's init as PID 1, no systemd): killed with -9 it runs again
 * within seconds and the member is alive again with its role; and after every member of the
 * cluster is restarted at once — `docker restart -t 0` of all, then all stopped and started
 * again in reverse order, twice — every member runs its agent again each time, whatever pids
 * the new boots hand out (a pidfile from the earlier boot is never taken for a live agent).
 *
 * Cost (2 cores, images built): about 1 min — three spawns (~30 s), kill -9 (~3 s), four
 * whole-cluster restarts (~7 s each until 3 alive). Needs a working docker daemon (`bash scripts/setup-docker.sh`);
 * skipped, saying why, without. Every container carries the run's label and is removed in after().
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { DockerOperator, PACKAGED_IMAGE, docker, dockerOk, dockerSkipReason } from "../helpers/docker.ts";

const skip = dockerSkipReason();
const RF = "/usr/etc/raptiformica/bin/raptiformica";
/** The agent (a node process) as ps shows it, whatever started it and whatever files say about it; its keeper (sh), whose command line ends the same way, does not match. */
const AGENT = "^[^ ]*node .*raptiformica\\.mjs agent$";

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

interface Member {
  host: string;
  meshAddress: string;
  container: string;
}

describe("the agent on docker members", { skip, timeout: 900_000 }, () => {
  let op: DockerOperator;
  const members: Member[] = [];

  /** The pids of the agent processes running on a member (pgrep in its container, through docker: no SSH needed). */
  const agentPids = async (m: Member): Promise<number[]> => {
    const r = await docker(["exec", m.container, "pgrep", "-f", AGENT], 10_000);
    return r.stdout.split("\n").filter(Boolean).map(Number);
  };
  /** Members as `members` on `via` shows them: mesh address → status and role. */
  const view = async (via: Member) => {
    const r = await op.onNodeAsync(via.host, [RF, "members", "--json"], 30_000);
    if (r.code !== 0) throw new Error(`members on ${via.host}: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`);
    return (JSON.parse(r.stdout) as { members: { meshAddress: string; status: string; role?: string }[] }).members;
  };
  /** What a member was doing, asked through docker (its sshd may be down right after a restart). */
  const diagnose = (m: Member) => op.diagnose(m.host, 15, m.container);

  before(async () => {
    op = new DockerOperator();
    const p = await op.rf(["package", "--compute-type", "docker"], 1_500_000);
    assert.equal(p.code, 0, `package failed:\n${p.stderr}`);
    await dockerOk(["image", "inspect", PACKAGED_IMAGE]);
    // A network of our own with an address per member, kept across restarts as a machine keeps
    // its address across reboots (docker's default bridge hands addresses out again in start
    // order, so starting in reverse order would swap them).
    const net = `rf-agent-${op.label.split("=")[1]}`;
    let subnet = "";
    for (let attempt = 0; attempt < 5 && !subnet; attempt++) {
      const candidate = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
      if ((await docker(["network", "create", "--label", op.label, "--subnet", `${candidate}.0/24`, net])).code === 0) subnet = candidate;
    }
    assert.ok(subnet, "a docker network with a free subnet");
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) {
      const s = await op.rf(["spawn", "--compute-type", "docker"], 300_000, {
        RAPTIFORMICA_DOCKER_NETWORK: net,
        RAPTIFORMICA_DOCKER_RUN_ARGS: `--label ${op.label} --ip ${subnet}.${10 + i}`,
      });
      assert.equal(s.code, 0, s.stderr);
      const [uuid, host, , meshAddress] = s.stdout.trim().split(" ");
      const container = readFileSync(join(op.cache, "var", "machines", "docker", "headless", uuid!, "container_id"), "utf8").trim();
      members.push({ host: host!, meshAddress: meshAddress!, container });
    }
    await waitFor("3 alive", async () => (await view(members[0]!)).filter((x) => x.status === "alive").length === 3, { timeoutMs: 60_000, intervalMs: 500 });
    log(`3 docker members spawned and alive: ${secs(t0)}`);
  });

  after(async () => {
    if (!op) return;
    const d = await op.rf(["destroy"], 300_000);
    if (d.code !== 0) log(`destroy failed: ${d.stderr}`);
    await op.cleanup();
  });

  it("kill -9 of the agent: it runs again within seconds, and the member is alive again with its role", async () => {
    const m = members[1]!;
    const role = (await view(members[0]!)).find((x) => x.meshAddress === m.meshAddress)?.role;
    assert.ok(role, "the member has a role");
    const [before] = await agentPids(m);
    assert.ok(before, "an agent runs");
    const t0 = performance.now();
    assert.equal((await op.onNodeAsync(m.host, ["kill", "-9", String(before)])).code, 0);
    let restarted = "";
    try {
      const after = await waitFor("an agent again", async () => {
        const pids = await agentPids(m);
        return pids.length === 1 && pids[0] !== before ? pids[0] : false;
      }, { timeoutMs: 15_000, intervalMs: 200 });
      restarted = `pid ${before} → ${after} after ${secs(t0)}`;
      await waitFor("alive with its role", async () => {
        const r = (await view(members[0]!)).find((x) => x.meshAddress === m.meshAddress);
        return r?.status === "alive" && r.role === role;
      }, { timeoutMs: 45_000, intervalMs: 500 });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await diagnose(m)}`);
    }
    log(`kill -9 agent: ${restarted}; alive (${role}) after ${secs(t0)}`);
  });

  it("every member restarted at once, four times (docker restart; stop all, start in reverse order; twice): every agent runs each time", async () => {
    const ids = members.map((m) => m.container);
    const rounds: [string, () => Promise<void>][] = [];
    for (let i = 1; i <= 2; i++) {
      rounds.push([`docker restart -t 0 (#${i})`, async () => void (await dockerOk(["restart", "-t", "0", ...ids], 120_000))]);
      rounds.push([`stop all, start in reverse order (#${i})`, async () => {
        await dockerOk(["stop", "-t", "0", ...ids], 120_000);
        for (const id of [...ids].reverse()) await dockerOk(["start", id], 60_000);
      }]);
    }
    for (const [name, restart] of rounds) {
      const t0 = performance.now();
      await restart();
      // Found by container, so a moved address would show in the message rather than confuse it.
      const before = members.map((m) => m.host);
      for (const m of members) m.host = await dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", m.container]);
      const hosts = members.map((m) => m.host);
      const moved = hosts.some((h, i) => h !== before[i]) ? ` (addresses were ${before.join(", ")})` : "";
      try {
        await waitFor(`an agent on every member after ${name}`, async () => {
          for (const m of members) if ((await agentPids(m).catch(() => [])).length !== 1) return false;
          return true;
        }, { timeoutMs: 60_000, intervalMs: 500 });
      } catch (e) {
        throw new Error(`${name}${moved}: ${(e as Error).message}\n${(await Promise.all(members.map(diagnose))).join("\n")}`);
      }
      const agents = secs(t0);
      let last = "";
      await waitFor(`3 alive after ${name}`, async () => {
        const v = await view(members[0]!).catch((e: Error) => (last = e.message, []));
        last = JSON.stringify(v.map((x) => [x.meshAddress.slice(0, 12), x.status, x.role]));
        return v.filter((x) => x.status === "alive").length === 3;
      }, { timeoutMs: 90_000, intervalMs: 500 }).catch(async (e: Error) => {
        throw new Error(`${name}${moved}: ${e.message}; last: ${last}\n${(await Promise.all(members.map(diagnose))).join("\n")}`);
      });
      log(`${name} (hosts ${hosts.join(", ")}${moved}): every agent running after ${agents}, 3 alive after ${secs(t0)}`);
    }
  });
});
