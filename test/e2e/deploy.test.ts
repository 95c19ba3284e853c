/**
 * `deploy INVENTORY` from an operator sandbox onto bare SSH machines (the netns compute type's
 * instances, started directly: own network/mount/UTS namespaces, own sshd), with real
 * yggdrasil and etcd on each: three hosts on the bridge, one reachable only through another
 * (`via`), one address nothing answers on. Also inventories rejected before anything is
 * touched, and a second deploy onto the live cluster. About 1–2 minutes.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { sandbox, type Sandbox } from "../helpers/cli.ts";
import { Machines, writeInventory, type Machine } from "../helpers/machines.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (network namespaces)"
    : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v yggdrasil && command -v etcd && command -v unshare && command -v flock"]).status !== 0
      ? "needs openssh-server, yggdrasil, etcd and util-linux"
      : undefined;

/** An address on the machines' bridge that nothing answers on. */
const NOBODY = "198.18.250.250";
/** A host "behind" NOBODY: only its jump host's failure can be reported. */
const BEHIND_NOBODY = "198.18.251.66";

const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The rows of a cli-table3 table, each cell's wrapped lines joined with spaces. */
function parseTable(text: string): string[][] {
  const rows: string[][] = [];
  let current: string[][] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("│")) {
      const cells = line.split("│").slice(1, -1).map((c) => c.trim());
      current ??= cells.map(() => []);
      cells.forEach((c, i) => c && current![i]!.push(c));
    } else if (current) {
      rows.push(current.map((parts) => parts.join(" ")));
      current = undefined;
    }
  }
  return rows;
}

/** Resolves to the connect error code, or "connected". */
function tcpProbe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 3000 });
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("timeout", () => {
      s.destroy();
      resolve("timeout");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe("deploy", { skip, timeout: 360_000 }, () => {
  let op: Sandbox;
  let machines: Machines;
  let a: Machine, b: Machine, c: Machine, d: Machine;
  /** Mesh address per host address, from the first deploy. */
  const mesh = new Map<string, string>();
  const rf = (args: string[], timeout = 60_000) => op.run(args, { env: {}, timeout });
  const onNode = (host: string, argv: string[]) =>
    spawnSync(
      "ssh",
      ["-i", join(op.cache, "ssh", "id_ed25519"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", `root@${host}`, "--", ...argv],
      { encoding: "utf8", timeout: 30_000 },
    );

  before(async () => {
    op = sandbox();
    machines = new Machines(op.cache);
    [a, b, c] = (await machines.startMany(3, 3)) as [Machine, Machine, Machine];
    d = await machines.startBehind(c);
  });
  after(async () => {
    // Whatever happened, no machine outlives the test.
    await machines?.cleanup();
    op?.cleanup();
  });

  it("rejects an inventory with a cycle or an unknown via before anything is touched", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rf-inv-"));
    const fresh = sandbox();
    try {
      const cycle = writeInventory(dir, "cycle.json", [
        { dst: a.address },
        { dst: "10.0.0.1", via: "10.0.0.2" },
        { dst: "10.0.0.2", via: "10.0.0.1" },
      ]);
      const module = join(dir, "nonexistent-module");
      const r1 = await fresh.run(["deploy", cycle, "--modules", module], { env: {} });
      assert.equal(r1.code, 1, r1.stderr);
      assert.match(r1.stderr, /Inventory .*cycle\.json has problems/);
      assert.match(r1.stderr, /"via" cycle: 10\.0\.0\.1 → 10\.0\.0\.2 → 10\.0\.0\.1/);

      const unknown = writeInventory(dir, "unknown.json", [{ dst: a.address }, { dst: b.address, port: "22", via: "nowhere.example" }]);
      const r2 = await fresh.run(["deploy", unknown], { env: {} });
      assert.equal(r2.code, 1, r2.stderr);
      assert.match(r2.stderr, new RegExp(`entry 2 \\(dst ${re(b.address)}\\) has "via": nowhere\\.example, which is no entry's dst`));
      // Nothing touched: no cache dir (no key, no config, no module) on the operator...
      assert.ok(!existsSync(fresh.cache), "the operator's cache dir was created");
      // ...and nothing on the hosts.
      assert.equal(onNode(a.address, ["test", "-e", "/usr/etc/raptiformica/bin"]).status, 1);
    } finally {
      fresh.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("deploys reachable hosts and one behind a via host; an unreachable host fails alone (exit 1)", async () => {
    // The host behind c really is out of the operator's reach, and c is not.
    assert.notEqual(await tcpProbe(d.address, 22), "connected");
    assert.equal(await tcpProbe(c.address, 22), "connected");

    // The unreachable host comes first: the first host that succeeds bootstraps the cluster.
    const inventory = writeInventory(op.home, "inventory.json", [
      { dst: NOBODY },
      { dst: a.address },
      { dst: b.address, port: "22" },
      { dst: c.address, port: 22 },
      { dst: d.address, via: c.address },
      { dst: BEHIND_NOBODY, via: NOBODY },
    ]);
    // A module installed first (like `install`), whose config reaches the cluster.
    const moduleDir = join(op.home, "deploy-demo");
    mkdirSync(moduleDir);
    writeFileSync(join(moduleDir, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", demo: { deployed_with: "deploy-demo" } }));
    const t0 = Date.now();
    const r = await rf(["deploy", inventory, "--concurrent", "5", "--modules", moduleDir], 300_000);
    const seconds = (Date.now() - t0) / 1000;
    process.stderr.write(`deploy of 6 hosts took ${seconds.toFixed(1)} s\n${r.stdout}`);
    assert.equal(r.code, 1, `${r.stderr}\n${r.stdout}`);
    assert.match(r.stderr, /Installed module deploy-demo/);
    assert.match(r.stderr, new RegExp(`deployed 4 of 6 host\\(s\\) in [\\d.]+ s; failed: ${re(NOBODY)}, ${re(BEHIND_NOBODY)} \\(see the table`));

    const rows = parseTable(r.stdout);
    assert.deepEqual(rows[0], ["Host", "Via", "Result", "Role / error", "Seconds"]);
    const row = (host: string) => rows.find((x) => x[0] === host) ?? assert.fail(`no row for ${host} in\n${r.stdout}`);
    const bad = row(NOBODY);
    assert.equal(bad[2], "failed");
    assert.match(bad[3]!, new RegExp(`^Cannot reach root@${re(NOBODY)} over SSH`));
    // The host behind it fails too, and the message names the jump host.
    const behind = row(BEHIND_NOBODY);
    assert.deepEqual(behind.slice(1, 3), [NOBODY, "failed"]);
    assert.match(behind[3]!, new RegExp(`^Cannot reach root@${re(BEHIND_NOBODY)} \\(via root@${re(NOBODY)}\\): its jump host ${re(NOBODY)} cannot be reached\\.`));
    for (const m of [a, b, c, d]) {
      const x = row(m.address);
      assert.equal(x[2], "ok", `${m.address}: ${x[3]}`);
      assert.match(x[3]!, /^(leader|voter|learner|proxy) 2[0-9a-f]{2}:/);
      assert.match(x[4]!, /^\d+\.\d$/);
    }
    assert.equal(row(d.address)[1], c.address);
    // The first host that could be reached bootstrapped the cluster; the others joined it.
    assert.match(row(a.address)[3]!, /\(first member\)/);
    assert.equal(rows.filter((x) => x[3]?.includes("(first member)")).length, 1);
    const meshOf = (m: Machine) => /(2[0-9a-f]{2}:[0-9a-f:]+)/.exec(row(m.address)[3]!)![1]!;
    for (const m of [a, b, c, d]) mesh.set(m.address, meshOf(m));

    // One cluster of four, seen from the operator (answered through a member).
    await waitFor(
      "4 alive members, seen from the operator",
      async () => {
        const m = await rf(["members", "--json"]);
        const parsed = JSON.parse(m.stdout) as { quorum: boolean; members: { host?: string; status: string; meshAddress: string }[] };
        return [a, b, c, d].every((x) => parsed.members.some((y) => y.host === x.address && y.meshAddress === meshOf(x) && y.status === "alive")) && parsed.members.length === 4;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );

    // The module's config is the cluster's.
    const got = onNode(b.address, ["/usr/etc/raptiformica/bin/raptiformica", "config", "get", "demo/deployed_with"]);
    assert.equal(got.stdout.trim(), "deploy-demo", got.stderr);

    // The host behind c is on the mesh: a, which cannot reach it directly, pings it.
    assert.notEqual(onNode(a.address, ["timeout", "5", "bash", "-c", `exec 3<>/dev/tcp/${d.address}/22`]).status, 0);
    await waitFor(`${a.address} pings ${meshOf(d)} (behind ${c.address})`, async () => onNode(a.address, ["ping", "-6", "-c1", "-W2", meshOf(d)]).status === 0, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
  });

  it("deploying again onto the live cluster updates the members in place (no clean, no second cluster)", async () => {
    assert.equal(mesh.size, 4, "needs the first deploy");
    const inventory = writeInventory(op.home, "again.json", [{ dst: a.address }, { dst: b.address }, { dst: c.address }, { dst: d.address, via: c.address }]);
    const r = await rf(["deploy", inventory, "--json"], 300_000);
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { hosts: { dst: string; ok: boolean; meshAddress?: string; bootstrapped?: boolean; waitedSeconds: number }[] };
    for (const h of report.hosts) {
      assert.ok(h.ok, h.dst);
      // Same identity: the node was not wiped and re-made.
      assert.equal(h.meshAddress, mesh.get(h.dst), h.dst);
      // Members were known: nobody bootstrapped, nobody waited for a first member.
      assert.equal(h.bootstrapped, undefined);
      assert.equal(h.waitedSeconds, 0);
    }
    const m = JSON.parse((await rf(["members", "--json"])).stdout) as { members: { status: string; meshAddress: string }[] };
    assert.equal(m.members.length, 4);
    await waitFor(
      "still 4 alive",
      async () => (JSON.parse((await rf(["members", "--json"])).stdout) as { members: { status: string }[] }).members.every((x) => x.status === "alive"),
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
  });
});
