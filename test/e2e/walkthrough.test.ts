/**
 * The original project's README walkthrough, as a user follows it, on docker members: spawn
 * three machines; `raptiformica ssh` into the first (the user's SSH agent forwarded); look at
 * the tun interface; from there `ssh root@[mesh address]` of the third runs `hostname`; then the
 * first loses its direct route to the third's IPv4 address (a blackhole route inside the
 * container, as a firewall would) and the same command still works, routed through the second.
 * Member names resolve too: `ssh root@<name of the second>` from the first.
 *
 * Cost (2 cores): about 1.5 min with the images built. Needs docker (`bash
 * scripts/setup-docker.sh`) and ssh-agent; skipped, saying why, without. Every container this
 * test starts carries the run's label and is removed in after(); the ssh-agent it starts is
 * killed there too.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { DockerOperator, dockerSkipReason } from "../helpers/docker.ts";

const skip = dockerSkipReason() ?? (spawnSync("sh", ["-c", "command -v ssh-agent && command -v ssh-add"]).status !== 0 ? "needs ssh-agent and ssh-add (openssh-client)" : undefined);

interface Member {
  host: string;
  meshAddress: string;
  name: string;
}

const log = (m: string) => process.stderr.write(`# ${m}\n`);

describe("the original's walkthrough on docker members", { skip, timeout: 600_000 }, () => {
  let op: DockerOperator;
  let agentDir: string;
  let agentPid: number | undefined;
  const agentEnv = () => ({ SSH_AUTH_SOCK: join(agentDir, "agent.sock") });
  const members: Member[] = [];
  /** `raptiformica ssh -A NODE -- ARGV`: a session from the operator with the user's agent along. */
  const fromFirst = (argv: string[]) => op.rf(["ssh", "-A", members[0]!.meshAddress, "--", ...argv], 90_000, agentEnv());
  const sshTo = (where: string) => ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=10", `root@${where}`, "hostname"];

  before(async () => {
    op = new DockerOperator();
    const p = await op.rf(["package", "--compute-type", "docker"], 1_500_000);
    assert.equal(p.code, 0, p.stderr);
    // The user's SSH agent, holding the key raptiformica lets the operator in with.
    agentDir = mkdtempSync(join(tmpdir(), "rf-walk-agent-"));
    const started = spawnSync("ssh-agent", ["-a", join(agentDir, "agent.sock"), "-s"], { encoding: "utf8" });
    assert.equal(started.status, 0, started.stderr);
    agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1]);
  });

  after(async () => {
    if (op) {
      const d = await op.rf(["destroy"], 300_000);
      if (d.code !== 0) log(`destroy failed: ${d.stderr}`);
      await op.cleanup();
    }
    if (agentPid) spawnSync("kill", [String(agentPid)]);
    if (agentDir) rmSync(agentDir, { recursive: true, force: true });
  });

  it("spawn three machines; raptiformica ssh into the first shows its tun interface with its mesh address", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await op.rf(["spawn", "--compute-type", "docker"], 300_000);
      assert.equal(r.code, 0, r.stderr);
      const [, host, , meshAddress] = r.stdout.trim().split(" ");
      await waitFor(`${host} alive`, async () => (await op.members()).some((x) => x.meshAddress === meshAddress && x.status === "alive"), { timeoutMs: 90_000, intervalMs: 500 });
      const name = (await op.members()).find((x) => x.meshAddress === meshAddress)!.name;
      members.push({ host: host!, meshAddress: meshAddress!, name });
    }
    // The key the operator's spawns were let in with goes into the user's agent.
    const added = spawnSync("ssh-add", [join(op.cache, "ssh", "id_ed25519")], { encoding: "utf8", env: { ...process.env, ...agentEnv() } });
    assert.equal(added.status, 0, added.stderr);
    const tun = await fromFirst(["ip", "-6", "addr", "show", "dev", "tun0"]);
    assert.equal(tun.code, 0, tun.stderr);
    assert.match(tun.stdout, new RegExp(`inet6 ${members[0]!.meshAddress}/7`));
  });

  it("from the first, ssh root@[mesh address of the third] runs hostname there; by name to the second too", async () => {
    assert.equal(members.length, 3, "three machines were spawned");
    const third = op.onNode(members[2]!.host, ["hostname"]).stdout.trim();
    const r = await fromFirst(sshTo(members[2]!.meshAddress));
    assert.equal(r.code, 0, `ssh from the first to the third's mesh address: ${r.stderr}`);
    assert.equal(r.stdout.trim().split("\n").pop(), third);
    const second = op.onNode(members[1]!.host, ["hostname"]).stdout.trim();
    const byName = await fromFirst(sshTo(members[1]!.name));
    assert.equal(byName.code, 0, `ssh from the first to the second by name: ${byName.stderr}`);
    assert.equal(byName.stdout.trim().split("\n").pop(), second);
  });

  it("with the third's IPv4 address cut off on the first, the same ssh still works, through the second", async () => {
    assert.equal(members.length, 3, "three machines were spawned");
    const [first, second, third] = members as [Member, Member, Member];
    const cut = op.onNode(first.host, ["ip", "route", "add", "blackhole", `${third.host}/32`]);
    assert.equal(cut.code, 0, cut.stderr);
    const direct = op.onNode(first.host, ["ping", "-c1", "-W1", third.host]);
    assert.notEqual(direct.code, 0, "the first can no longer reach the third's IPv4 address");
    const t0 = performance.now();
    const name = op.onNode(third.host, ["hostname"]).stdout.trim();
    let last = "";
    await waitFor(
      "the first reaches the third over the mesh again",
      async () => {
        const r = await fromFirst(sshTo(third.meshAddress));
        last = `exit ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`;
        return r.code === 0 && r.stdout.trim().split("\n").pop() === name;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last: ${last}`);
    });
    log(`walkthrough: the first reached the third again ${((performance.now() - t0) / 1000).toFixed(1)} s after its IPv4 route was cut`);
    // Through the second: the first has no link to the third any more, and the second is linked to both.
    const peersOfFirst = op.onNode(first.host, ["yggdrasilctl", "-endpoint", "unix:///root/.raptiformica.d/node/run/ygg.sock", "-json", "getPeers"]);
    const up = (JSON.parse(peersOfFirst.stdout) as { peers: { key?: string; address?: string; up?: boolean }[] | null }).peers ?? [];
    assert.ok(!up.some((p) => p.up && p.address === third.meshAddress), "the first still has a link to the third");
    assert.ok(up.some((p) => p.up && p.address === second.meshAddress), "the first is linked to the second");
  });
});
