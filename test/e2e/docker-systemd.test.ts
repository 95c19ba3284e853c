/**
 * A docker member that boots systemd as PID 1 (`RAPTIFORMICA_DOCKER_INIT=systemd`), so the
 * agent's systemd path (src/node/systemd.ts) runs for real: `mesh` writes and enables the
 * agent's unit, systemd restarts the agent when it is killed, and starts it again when the
 * container boots again, which brings the member back.
 *
 * Cost (2 cores): about 40 s when the systemd image exists; its first build adds the systemd
 * packages and the headless bootstrap to the bookworm images (about 40 s with a fast mirror).
 * Needs a working docker daemon that lets a container write its cgroup subtree (see the docker
 * compute type's README, "systemd as PID 1"); skipped, saying why, without docker. Every
 * container this test starts carries the run's label and is removed in after().
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { DockerOperator, dockerOk, dockerSkipReason } from "../helpers/docker.ts";

const skip = dockerSkipReason();
const RF = "/usr/etc/raptiformica/bin/raptiformica";
const UNIT = "raptiformica-agent.service";
const SYSTEMD = { RAPTIFORMICA_DOCKER_INIT: "systemd" };
const IMAGE = "raptiformica-docker:headless-bookworm-systemd";

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

describe("a docker member with systemd as PID 1", { skip, timeout: 900_000 }, () => {
  let op: DockerOperator;
  let host = "";
  let meshAddress = "";
  let container = "";
  /** systemctl on the member: its stdout, trimmed (whatever its exit code). */
  const systemctl = (...args: string[]) => op.onNode(host, ["systemctl", ...args]).stdout.trim();
  const mainPid = () => Number(systemctl("show", "-p", "MainPID", "--value", UNIT));
  /** This member's row in `members` (status, role), as the member itself answers it. */
  const ownRow = () => {
    const r = op.onNode(host, [RF, "members", "--json"]);
    if (r.code !== 0) throw new Error(`members: ${r.stderr}`);
    const m = (JSON.parse(r.stdout) as { members: { meshAddress: string; status: string; role?: string }[] }).members;
    return m.find((x) => x.meshAddress === meshAddress);
  };
  const aliveInMembers = () => ownRow()?.status === "alive";

  before(async () => {
    op = new DockerOperator();
    const t0 = performance.now();
    const p = await op.rf(["package", "--compute-type", "docker"], 1_500_000, SYSTEMD);
    assert.equal(p.code, 0, `package --compute-type docker (systemd) failed:\n${p.stderr}`);
    log(`package --compute-type docker (systemd): ${secs(t0)}`);
    await dockerOk(["image", "inspect", IMAGE]);
  });

  after(async () => {
    if (!op) return;
    const d = await op.rf(["destroy"], 300_000);
    if (d.code !== 0) log(`destroy failed: ${d.stderr}`);
    await op.cleanup();
  });

  it("spawn: systemd is PID 1, the agent runs as its enabled unit, Debian's own etcd and yggdrasil services do not", async () => {
    const t0 = performance.now();
    const s = await op.rf(["spawn", "--compute-type", "docker"], 300_000, SYSTEMD);
    assert.equal(s.code, 0, `spawn: ${s.stderr}`);
    const [uuid, h, , addr] = s.stdout.trim().split(" ");
    host = h!;
    meshAddress = addr!;
    container = readFileSync(join(op.cache, "var", "machines", "docker", "headless", uuid!, "container_id"), "utf8").trim();
    log(`spawn (systemd): ${secs(t0)}`);
    assert.equal(await dockerOk(["inspect", "-f", "{{.Config.Image}}", container]), IMAGE);

    assert.equal(op.onNode(host, ["cat", "/proc/1/comm"]).stdout.trim(), "systemd");
    assert.equal(systemctl("is-active", UNIT), "active");
    assert.equal(systemctl("is-enabled", UNIT), "enabled", "started at boot");
    const pid = mainPid();
    assert.ok(pid > 1, `MainPID ${pid}`);
    const cmd = op.onNode(host, ["cat", `/proc/${pid}/cmdline`]).stdout.split("\0");
    assert.equal(cmd.at(-2), "agent", `the unit's main process is the agent: ${cmd.join(" ")}`);
    // The distribution's units would start a second etcd on 127.0.0.1:2379: the bootstrap disabled them.
    for (const u of ["etcd.service", "yggdrasil.service"]) assert.notEqual(systemctl("is-enabled", u), "enabled", u);
    assert.notEqual(systemctl("is-active", "etcd.service"), "active");
    await waitFor("the member alive in members", aliveInMembers, { timeoutMs: 60_000, intervalMs: 250 });
  });

  it("kill -9 of the agent: systemd starts it again, the member is alive with its role", async () => {
    assert.ok(host, "spawned");
    const role = ownRow()?.role;
    assert.ok(role, "the member has a role");
    const before = mainPid();
    const t0 = performance.now();
    assert.equal(op.onNode(host, ["kill", "-9", String(before)]).code, 0);
    const after = await waitFor(
      "a new agent under systemd",
      () => {
        const p = mainPid();
        return p > 1 && p !== before && systemctl("is-active", UNIT) === "active" ? p : false;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    log(`kill -9 agent → restarted by systemd (pid ${before} → ${after}): ${secs(t0)}`);
    assert.match(systemctl("show", "-p", "NRestarts", "--value", UNIT), /^[1-9]/);
    const s = op.onNode(host, [RF, "config", "set", "systemd/after-kill", "yes"]);
    assert.equal(s.code, 0, s.stderr);
    await waitFor("the member alive in members with its role", () => {
      const r = ownRow();
      return r?.status === "alive" && r.role === role;
    }, { timeoutMs: 60_000, intervalMs: 250 });
  });

  it("docker restart: systemd boots again, starts the agent, the member comes back with its identity", async () => {
    assert.ok(host, "spawned");
    const t0 = performance.now();
    await dockerOk(["restart", "-t", "20", container], 120_000);
    await waitFor("sshd answers again", () => op.onNode(host, ["true"], 5_000).code === 0, { timeoutMs: 60_000, intervalMs: 250 });
    await waitFor("the agent unit active again", () => systemctl("is-active", UNIT) === "active", { timeoutMs: 60_000, intervalMs: 250 });
    await waitFor("the member alive in members again", aliveInMembers, { timeoutMs: 90_000, intervalMs: 500 });
    log(`docker restart → member again: ${secs(t0)}`);
    assert.equal(op.onNode(host, ["cat", "/proc/1/comm"]).stdout.trim(), "systemd");
    const id = JSON.parse(op.onNode(host, [RF, "identity", "--json"]).stdout) as { meshAddress: string };
    assert.equal(id.meshAddress, meshAddress);
    const g = op.onNode(host, [RF, "config", "get", "systemd/after-kill"]);
    assert.equal(g.stdout.trim(), "yes", `the KV kept what was written before the restart: ${g.stderr}`);
  });
});
