import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createCa, issueCertificate } from "../../src/consensus/tls.ts";
import { Lab, waitFor } from "../lab/index.ts";
import { LabCluster } from "../helpers/cluster.ts";
import { ROOT } from "../helpers/cli.ts";
import { buildId } from "../../src/node/status.ts";
import { yggdrasil05 } from "../helpers/netns-pair.ts";

/*
 * The node runtime for real: yggdrasil, etcd and the agent in network namespaces of the lab,
 * driven through the CLI exactly as an operator's `slave` would (see test/helpers/cluster.ts).
 */

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "ping", "yggdrasil", "etcd", "etcdctl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}
const skip = missing();

const labs: Lab[] = [];
async function lab(nodes: number, topology: ConstructorParameters<typeof Object>[0]): Promise<LabCluster> {
  const l = await Lab.create({ nodes, topology: topology as never });
  labs.push(l);
  return new LabCluster(l);
}
after(async () => {
  for (const l of labs) await l.destroy();
});

async function ping6(c: LabCluster, from: number, address: string): Promise<boolean> {
  const r = await c.lab.exec(from, ["ping", "-6", "-c1", "-W1", address], { timeoutMs: 5000 });
  return r.exitCode === 0;
}

async function roles(c: LabCluster, from: number): Promise<Record<string, string>> {
  const m = await c.members(from);
  return Object.fromEntries(m.members.map((x) => [x.name, x.role ?? "-"]));
}

describe("a 3-node cluster", { skip, timeout: 240_000 }, () => {
  let c: LabCluster;

  it("forms: 3 alive in members, a value written on one is read on the others", async () => {
    // A cluster_change handler on the first member records every event it is given.
    c = await (await lab(3, "full")).form(3, {
      config: { "platform/default/hooks/cluster_change/record/command": 'cat >> "$RAPTIFORMICA_CACHE_DIR/cluster_change.jsonl"' },
      aliveTimeoutMs: 30_000,
    });
    for (const i of [1, 2]) await c.waitAlive(i, 3, 30_000);
    await c.rfOk(1, ["config", "set", "test/written/on", "n1"]);
    for (const i of [0, 2]) {
      await waitFor(`n${i} reads the value written on n1`, async () => (await c.rfOk(i, ["config", "get", "test/written/on"])).trim() === "n1", {
        timeoutMs: 10_000,
        intervalMs: 200,
      });
    }
    // The voter manager grows the voter set to 3 (odd, ≤ max_voters).
    await waitFor(
      "3 voters",
      async () => {
        const r = Object.values(await roles(c, 0));
        return r.filter((x) => x === "leader" || x === "voter").length === 3 && r.includes("leader");
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // Each node keeps every member's name → mesh address in its hosts file (the lab gives each its own).
    const rows = (await c.members(0)).members;
    for (const i of [0, 1, 2]) {
      await waitFor(
        `n${i}'s hosts file names all 3 members`,
        () => {
          const text = existsSync(join(c.lab.nodes[i]!.dir, "hosts")) ? readFileSync(join(c.lab.nodes[i]!.dir, "hosts"), "utf8") : "";
          return rows.every((r) => text.includes(`${r.meshAddress}\t${r.name}\n`));
        },
        { timeoutMs: 15_000, intervalMs: 500 },
      );
    }
  });

  it("fires cluster_change on members with the change as payload, debounced", async () => {
    const file = join(c.lab.nodes[0]!.cacheDir, "cluster_change.jsonl");
    const events = await waitFor(
      "cluster_change events on n0",
      () => {
        const lines = readFileSync(file, "utf8").trim().split("\n").filter(Boolean);
        return lines.length > 0 ? lines.map((l) => JSON.parse(l) as { hook: string; changes: { type: string; key: string }[] }) : false;
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    assert.ok(events.every((e) => e.hook === "cluster_change"));
    const keys = events.flatMap((e) => e.changes.map((x) => x.key));
    const n2 = (await c.identity(2)).publicKey;
    assert.ok(keys.includes(`raptiformica/nodes/${n2}`), "the new node's record is in a payload");
    assert.ok(keys.some((k) => k.startsWith(`raptiformica/meshnet/neighbours/${n2}/`)), "its neighbour entry too");
    // Many KV events, few handler runs: the events are batched.
    assert.ok(events.length < keys.length, `${events.length} runs for ${keys.length} changes`);
  });

  it("etcd refuses clients without a cluster certificate", async () => {
    const n0 = (await c.identity(0)).meshAddress;
    const url = `https://[${n0}]:2379`;
    const tls = join(c.lab.nodes[1]!.cacheDir, "node", "etcd", "tls");
    const good = await c.lab.exec(1, ["etcdctl", "--endpoints", url, "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "--dial-timeout", "3s", "get", "raptiformica/raptiformica_api_version", "--print-value-only"], { env: { ETCDCTL_API: "3" } });
    assert.equal(good.exitCode, 0, good.stderr);
    assert.equal(good.stdout.trim(), "0.1");

    const noCert = await c.lab.exec(1, ["etcdctl", "--endpoints", url, "--cacert", join(tls, "ca.crt"), "--dial-timeout", "3s", "--command-timeout", "4s", "get", "x"], { env: { ETCDCTL_API: "3" } });
    assert.notEqual(noCert.exitCode, 0, "a client without a certificate is refused");

    const foreignCa = await createCa("someone else");
    const foreign = await issueCertificate(foreignCa, { commonName: "intruder", ips: ["127.0.0.1"], dnsNames: ["localhost"] });
    const dir = join(c.lab.nodes[1]!.dir, "foreign");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "c.crt"), foreign.certPem);
    writeFileSync(join(dir, "c.key"), foreign.keyPem);
    const wrongCa = await c.lab.exec(1, ["etcdctl", "--endpoints", url, "--cacert", join(tls, "ca.crt"), "--cert", join(dir, "c.crt"), "--key", join(dir, "c.key"), "--dial-timeout", "3s", "--command-timeout", "4s", "get", "x"], { env: { ETCDCTL_API: "3" } });
    assert.notEqual(wrongCa.exitCode, 0, "a certificate from another CA is refused");
  });

  it("etcd listens only on the mesh address and localhost", async () => {
    const r = await c.lab.exec(0, ["ss", "-Htln"]);
    const listeners = r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[3] ?? "").filter((a) => /:(2379|2380)$/.test(a));
    const n0 = (await c.identity(0)).meshAddress;
    assert.ok(listeners.length > 0, r.stdout);
    for (const l of listeners) assert.ok(l.startsWith("127.0.0.1:") || l.startsWith(`[${n0}]:`), `unexpected etcd listener ${l}`);
  });

  it("mesh moves an agent that runs an older build onto the installed one; yggdrasil and etcd stay up", async () => {
    const run = join(c.lab.nodes[1]!.cacheDir, "node", "run");
    const pid = (name: string) => Number(readFileSync(join(run, `${name}.pid`), "utf8").trim());
    const [agentBefore, yggBefore] = [pid("agent"), pid("yggdrasil")];
    // A new build, as `slave` pushing raptiformica again brings: the bundle's mtime changes.
    const bundle = join(ROOT, "dist", "raptiformica.mjs");
    const st = statSync(bundle);
    utimesSync(bundle, st.atime, new Date(st.mtimeMs + 2000));
    try {
      await c.rfOk(1, ["mesh", "--no-after-mesh"]);
      const agentAfter = pid("agent");
      assert.notEqual(agentAfter, agentBefore, "the agent was not restarted");
      assert.equal((JSON.parse(readFileSync(join(run, "status.json"), "utf8")) as { build?: string }).build, buildId(bundle));
      assert.equal(pid("yggdrasil"), yggBefore, "yggdrasil was restarted with the agent");
      await c.waitAlive(0, 3, 30_000);
      // Same build: left alone.
      await c.rfOk(1, ["mesh", "--no-after-mesh"]);
      assert.equal(pid("agent"), agentAfter);
    } finally {
      utimesSync(bundle, st.atime, st.mtime);
    }
  });

  it("a killed node is shown failed; restarted, it comes back with the same address", async () => {
    const before = await c.identity(2);
    await c.lab.killNode(2);
    await waitFor(
      "n2 failed in members",
      async () => (await c.members(0)).members.find((m) => m.name === "n2")?.status === "failed",
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    await c.rfOk(2, ["mesh", "--no-after-mesh"]);
    await c.waitAlive(0, 3, 60_000);
    const row = (await c.members(0)).members.find((m) => m.name === "n2");
    assert.equal(row?.meshAddress, before.meshAddress);
    assert.equal((await c.identity(2)).meshAddress, before.meshAddress);
  });

  it("clean leaves the cluster (shown left) and keeps the node identity", async () => {
    const before = await c.identity(2);
    await c.waitAlive(0, 3, 60_000);
    await c.rfOk(2, ["clean"]);
    await waitFor("n2 left", async () => (await c.members(0)).members.find((m) => m.meshAddress === before.meshAddress)?.status === "left", {
      timeoutMs: 30_000,
      intervalMs: 300,
    });
    assert.equal((await c.identity(2)).meshAddress, before.meshAddress, "same identity after clean");
    const ps = spawnSync("sh", ["-c", `ip netns pids ${c.lab.nodes[2]!.ns} | wc -l`], { encoding: "utf8" });
    assert.equal(ps.stdout.trim(), "0", "no raptiformica process left on n2");
  });

  it("says plainly when quorum is lost, and shows what the cache knows", async () => {
    // Now n0 and n1 are the voters left; without n1 there is no quorum.
    await c.lab.killNode(1);
    await waitFor(
      "quorum lost reported on n0",
      async () => {
        const r = await c.rf(0, ["members"], 30_000);
        return r.exitCode === 1 && /lost quorum/.test(r.stderr) && /n0/.test(r.stdout);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // A change made meanwhile is kept locally, queued, and reaches the cluster once it is back.
    const w = await c.rf(0, ["config", "set", "test/while/no/quorum", "kept"], 60_000);
    assert.equal(w.exitCode, 0, w.stderr);
    assert.match(w.stderr, /queued/);
    await c.rfOk(1, ["mesh", "--no-after-mesh"]);
    await waitFor("the queued change reaches the cluster", async () => (await c.rf(1, ["config", "get", "test/while/no/quorum"])).stdout.trim() === "kept", {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
  });
});

describe("line topology A–B–C", { skip, timeout: 240_000 }, () => {
  it("A reaches C's mesh address through B; cutting a redundant link keeps traffic flowing", async () => {
    // A ring: 0–1, 1–2, 2–0. Node 2 is registered via node 1, so 0 learns of it through the KV.
    const c = await (await lab(3, { links: [[0, 1], [1, 2], [0, 2]] })).form(3, { via: "previous" });
    const c2 = (await c.identity(2)).meshAddress;
    await waitFor("A pings C over the mesh", () => ping6(c, 0, c2), { timeoutMs: 20_000, intervalMs: 300 });
    await c.lab.cutLink(0, 2);
    await waitFor("A still pings C (through B) after the direct link is cut", () => ping6(c, 0, c2), { timeoutMs: 30_000, intervalMs: 300 });
    await c.lab.restoreLink(0, 2);
  });

  it("in a pure line, A reaches C only through B", async () => {
    const c = await (await lab(3, "line")).form(3, { via: "previous" });
    const c2 = (await c.identity(2)).meshAddress;
    // No IP route from A to C's underlay address: only the mesh gets there.
    const direct = await c.lab.exec(0, ["ping", "-c1", "-W1", c.lab.addressOf(2, 1)], { timeoutMs: 5000 });
    assert.notEqual(direct.exitCode, 0);
    await waitFor("A pings C over the mesh", () => ping6(c, 0, c2), { timeoutMs: 20_000, intervalMs: 300 });
    const v = await c.rfOk(2, ["config", "get", "meshnet/etcd/cluster_token"]);
    assert.match(v, /^raptiformica-/);
  });
});

describe("voters at 4 and 6 nodes", { skip, timeout: 300_000 }, () => {
  it("keeps an odd voter count (3, then 5); the others use their local proxy", async () => {
    // 4 of the 6 first: 3 voters of 4.
    const c = await (await lab(6, "full")).form(4, { voters: 3, aliveTimeoutMs: 90_000, votersTimeoutMs: 90_000 });
    const votersOf = async () => Object.values(await roles(c, 0)).filter((r) => r === "leader" || r === "voter").length;
    const r4 = await roles(c, 0);
    const proxy = Object.entries(r4).find(([, r]) => r === "proxy")?.[0];
    assert.ok(proxy, `one proxy among ${JSON.stringify(r4)}`);
    const idx = Number(proxy.slice(1));
    // A proxy node reads and writes the KV at 127.0.0.1 like any member.
    await c.rfOk(idx, ["config", "set", "test/from/proxy", "yes"]);
    assert.equal((await c.rfOk(0, ["config", "get", "test/from/proxy"])).trim(), "yes");
    // Its local listener is the grpc-proxy's, behind the same mutual TLS as etcd itself: a
    // local process without a cluster certificate is refused, one with it gets through.
    const tls = join(c.lab.nodes[idx]!.cacheDir, "node", "etcd", "tls");
    const etcdctl = (extra: string[]) =>
      c.lab.exec(idx, ["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", join(tls, "ca.crt"), ...extra, "--dial-timeout", "3s", "--command-timeout", "4s", "get", "raptiformica/test/from/proxy", "--print-value-only"], { env: { ETCDCTL_API: "3" } });
    const withCert = await etcdctl(["--cert", join(tls, "node.crt"), "--key", join(tls, "node.key")]);
    assert.equal(withCert.exitCode, 0, withCert.stderr);
    assert.equal(withCert.stdout.trim(), "yes");
    const withoutCert = await etcdctl([]);
    assert.notEqual(withoutCert.exitCode, 0, `the proxy's 127.0.0.1 listener answered a client without a certificate: ${withoutCert.stdout}`);

    for (const i of [4, 5]) await c.join(i);
    await waitFor("5 voters of 6", async () => (await votersOf()) === 5, { timeoutMs: 120_000, intervalMs: 500 });
    const r6 = Object.values(await roles(c, 0));
    assert.equal(r6.filter((r) => r === "proxy").length, 1, JSON.stringify(r6));
  });
});

describe("Yggdrasil majors", { skip, timeout: 180_000 }, () => {
  it("refuses to mesh with a neighbour of the other major, naming it", async () => {
    const c = await lab(1, "full");
    await c.rfOk(0, ["config", "set", `meshnet/neighbours/${"ab".repeat(32)}/mesh_address`, "200::1"]);
    await c.rfOk(0, ["config", "set", `meshnet/neighbours/${"ab".repeat(32)}/yggdrasil_major`, "0.5"]);
    await c.rfOk(0, ["config", "set", `meshnet/neighbours/${"ab".repeat(32)}/name`, "newbox"]);
    const r = await c.rf(0, ["mesh", "--no-after-mesh"]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /newbox/);
    assert.match(r.stderr, /0\.4.*0\.5|0\.5.*0\.4/);
  });

  it("forms a cluster on Yggdrasil 0.5 too", async (t) => {
    const y05 = yggdrasil05();
    if ("skip" in y05) return t.skip(y05.skip);
    const { bin } = y05;
    const l = await Lab.create({ nodes: 2, topology: "full" });
    labs.push(l);
    const c = await new LabCluster(l, { RAPTIFORMICA_YGGDRASIL: bin }).form(2);
    const n1 = (await c.identity(1)).meshAddress;
    await waitFor("n0 pings n1 over 0.5", () => ping6(c, 0, n1), { timeoutMs: 20_000, intervalMs: 300 });
    const cfg = readFileSync(join(l.nodes[0]!.cacheDir, "node", "yggdrasil", "yggdrasil.conf"), "utf8");
    assert.doesNotMatch(cfg, /"PublicKey"/, "0.5 config");
  });
});

describe("a foreign Yggdrasil node", { skip, timeout: 120_000 }, () => {
  it("cannot peer with a member nor reach its mesh address", async () => {
    const c = await lab(2, "full");
    await c.first(0);
    const member = await c.identity(0);
    const dir = c.lab.nodes[1]!.dir;
    const gen = spawnSync("yggdrasil", ["-genconf", "-json"], { encoding: "utf8" });
    const conf = JSON.parse(gen.stdout) as Record<string, unknown>;
    conf["Peers"] = [`tcp://${c.lab.addressOf(0)}:4863`];
    conf["AdminListen"] = `unix://${join(dir, "foreign.sock")}`;
    conf["MulticastInterfaces"] = [];
    writeFileSync(join(dir, "foreign.conf"), JSON.stringify(conf, null, 2));
    c.lab.spawn(1, ["yggdrasil", "-useconffile", join(dir, "foreign.conf"), "-logto", "stdout"], { label: "foreign" });
    // The member sees the attempts and refuses them.
    const log = join(c.lab.nodes[0]!.cacheDir, "node", "log", "yggdrasil.log");
    await waitFor("the member refuses the foreign key", () => /is not in AllowedPublicKeys/.test(readFileSync(log, "utf8")), { timeoutMs: 20_000, intervalMs: 300 });
    const peers = await c.lab.exec(0, ["yggdrasilctl", "-json", "-endpoint", `unix://${join(c.lab.nodes[0]!.cacheDir, "node", "run", "ygg.sock")}`, "getPeers"]);
    assert.equal(peers.exitCode, 0, peers.stderr);
    assert.doesNotMatch(peers.stdout, new RegExp(String(conf["PublicKey"] ?? "no-such-key")));
    assert.equal(await ping6(c, 1, member.meshAddress), false);
  });
});
