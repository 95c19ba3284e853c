import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LabCluster } from "../helpers/cluster.ts";
import { Lab, waitFor } from "../lab/index.ts";
import { readStatus } from "../../src/node/status.ts";

/*
 * A bad cluster setting written straight into the KV (past `config set`, as an older version
 * or a hand-run etcdctl would) must not stop a member: a one-node lab cluster, the value put
 * with etcdctl, then the agent, `members` and `config` looked at.
 */

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "yggdrasil", "etcd", "etcdctl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}

describe("a bad cluster setting in the KV", { skip: missing(), timeout: 120_000 }, () => {
  let lab: Lab | undefined;
  after(async () => {
    await lab?.destroy();
  });

  it("the member keeps running on its last good value, members shows the problem, config fixes it", async () => {
    lab = await Lab.create({ nodes: 1, topology: "full" });
    const c = new LabCluster(lab);
    await c.first(0);
    const node = join(lab.nodes[0]!.cacheDir, "node");
    const tls = join(node, "etcd", "tls");
    const etcdctl = (...args: string[]) =>
      lab!.exec(0, ["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "--dial-timeout", "3s", ...args], {
        env: { ETCDCTL_API: "3" },
      });
    const key = "raptiformica/meshnet/etcd/client_port";
    const put = await etcdctl("put", key, "twentythree79");
    assert.equal(put.exitCode, 0, put.stderr);

    // The agent goes on ticking without an error, on port 2379 still, and says why.
    const pid = readStatus(join(node, "run", "status.json"))?.pid;
    assert.ok(pid);
    const since = Date.now();
    const status = await waitFor(
      "the agent ticking after the bad value",
      () => {
        const s = readStatus(join(node, "run", "status.json"));
        return s && s.updatedAt > since + 5500 ? s : false;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.equal(status.pid, pid, "the same agent");
    assert.equal(status.phase, "ready");
    assert.equal(status.lastError, undefined);
    const log = readFileSync(join(node, "log", "agent.log"), "utf8");
    assert.match(log, /client_port is "twentythree79", but it must be a whole number from 1 to 65535.*keeps running with its last good settings/);
    assert.equal(JSON.parse(readFileSync(join(node, "settings.json"), "utf8")).clientPort, 2379);

    // members answers (on 2379), with the node alive and the problem named.
    const m = await c.rf(0, ["members", "--json"], 30_000);
    assert.equal(m.exitCode, 0, m.stderr);
    const parsed = JSON.parse(m.stdout) as { quorum: boolean; members: { status: string }[]; problems: { subject: string; message: string }[] };
    assert.equal(parsed.quorum, true);
    assert.deepEqual(parsed.members.map((x) => x.status), ["alive"]);
    assert.ok(parsed.problems.some((p) => p.subject === key && /twentythree79/.test(p.message)), JSON.stringify(parsed.problems));

    // Restarted, the agent still runs on 2379: the local cache now mirrors the bad value too.
    await waitFor("the bad value mirrored into the local cache", () => JSON.parse(readFileSync(join(lab!.nodes[0]!.cacheDir, "mutable_config.json"), "utf8"))[key] === "twentythree79", { timeoutMs: 10_000, intervalMs: 300 });
    process.kill(pid, "SIGTERM");
    await waitFor("the agent gone", () => !alive(pid), { timeoutMs: 20_000, intervalMs: 200 });
    const restarted = Date.now();
    await c.rfOk(0, ["members", "--rejoin"]);
    await waitFor(
      "the restarted agent ready",
      () => {
        const s = readStatus(join(node, "run", "status.json"));
        return s && s.pid !== pid && s.updatedAt > restarted && s.phase === "ready" && s.kv === "connected";
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );

    // config works on the member and fixes the value.
    assert.equal((await c.rfOk(0, ["config", "get", key])).trim(), "twentythree79");
    await c.rfOk(0, ["config", "set", key, "2379"]);
    const fixed = JSON.parse(await c.rfOk(0, ["members", "--json"], 30_000)) as { problems: unknown[] };
    assert.deepEqual(fixed.problems, []);
    await waitFor("the agent says so", () => /the cluster settings are valid again/.test(readFileSync(join(node, "log", "agent.log"), "utf8")), { timeoutMs: 15_000, intervalMs: 300 });
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
