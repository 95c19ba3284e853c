import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Etcd3 } from "etcd3";
import { NodeRegistration, nodeKey, type NodeRecord } from "../../src/consensus/registry.ts";
import { waitFor } from "../lab/index.ts";

/*
 * The node record through a local grpc-proxy, as every non-voter keeps it: a real etcd and a
 * real `etcd grpc-proxy` on loopback ports (plain HTTP: this is about leases, not TLS, which
 * the cluster tests cover).
 */

const skip = spawnSync("sh", ["-c", "command -v etcd && command -v etcdctl"], { stdio: "ignore" }).status !== 0 ? "needs etcd and etcdctl" : undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

describe("the node record through a grpc-proxy", { skip, timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-registration-"));
  const children: ChildProcess[] = [];
  let upstream = "";
  let client: Etcd3;
  let direct: Etcd3;

  before(async () => {
    const [clientPort, peerPort, proxyPort] = [await freePort(), await freePort(), await freePort()];
    upstream = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    children.push(
      spawn("etcd", ["--data-dir", join(dir, "data"), "--listen-client-urls", upstream, "--advertise-client-urls", upstream, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `default=${peer}`], { stdio: "ignore" }),
      spawn("etcd", ["grpc-proxy", "start", "--endpoints", upstream, "--listen-addr", `127.0.0.1:${proxyPort}`, "--data-dir", join(dir, "proxy")], { stdio: "ignore" }),
    );
    client = new Etcd3({ hosts: `http://127.0.0.1:${proxyPort}` });
    direct = new Etcd3({ hosts: upstream });
    await waitFor("etcd through the proxy", async () => (await client.put("ready").value("1"), true), { timeoutMs: 15_000, intervalMs: 200 });
  });

  after(() => {
    client?.close();
    direct?.close();
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("comes back when its lease expires upstream (the proxy then answers keep-alives with TTL -1)", async () => {
    const record: NodeRecord = { publicKey: "ab".repeat(32), name: "n1", meshAddress: "200::1", role: "proxy", startedAt: Date.now(), hostname: "h", version: "0", yggdrasilMajor: "0.4" };
    const reg = new NodeRegistration(client, 2);
    await reg.ensure(record);
    assert.equal(await direct.get(nodeKey(record.publicKey)).string(), JSON.stringify(record));
    // The cluster loses the lease (as after a long election): revoked upstream, behind the proxy's back.
    const list = spawnSync("etcdctl", ["--endpoints", upstream, "lease", "list"], { encoding: "utf8" });
    const ids = list.stdout.split("\n").slice(1).map((l) => l.trim()).filter(Boolean);
    assert.equal(ids.length, 1, list.stdout);
    for (const id of ids) {
      const r = spawnSync("etcdctl", ["--endpoints", upstream, "lease", "revoke", id], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    }
    assert.equal(await direct.get(nodeKey(record.publicKey)).string(), null);
    // The agent calls ensure every tick: the record is written again on a new lease.
    await waitFor(
      "the record written again",
      async () => {
        await reg.ensure(record);
        return (await direct.get(nodeKey(record.publicKey)).string()) === JSON.stringify(record);
      },
      { timeoutMs: 15_000, intervalMs: 500 },
    );
    reg.close();
  });
});
