/**
 * The mesh map on a real 4-member lab cluster (yggdrasil, etcd, agents in network namespaces),
 * looked at with headless chromium inside a member's namespace (its 127.0.0.1 is that member's):
 * the page shows the members and the links that exist, /api/graph agrees with `members`, a
 * killed member turns failed without a reload, a cut link disappears; and `raptiformica map`
 * from an operator machine (lab node 4) opens a tunnel whose URL serves the page.
 * Screenshots: test-artifacts/map/. About 2 minutes.
 */
import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { parseLinkReport, type LinkReport } from "../../src/consensus/links.ts";
import type { MapGraph } from "../../src/ops/map/graph.ts";
import type { Drawn } from "../../src/web/map/graph-view.ts";
import { Lab, waitFor } from "../lab/index.ts";
import { artifactsDir, browserMissing, launchChromium } from "../helpers/browser.ts";
import { BIN, ROOT } from "../helpers/cli.ts";
import { LabCluster, labMemberPath } from "../helpers/cluster.ts";
import { startSshd } from "../helpers/sshd.ts";

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "yggdrasil", "etcd", "etcdctl", "/usr/sbin/sshd", "iptables", "ip6tables"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return browserMissing();
}
const skip = missing();

const MAP_PORT = 4865;
const OPERATOR = 4;

type Member = { name: string; publicKey: string; meshAddress: string; host?: string; status: string; role?: string };

interface MapHandle {
  drawn(): Drawn;
  graph(): MapGraph | undefined;
}
const drawn = (page: Page) => page.evaluate(() => (window as unknown as { raptiformicaMap: MapHandle }).raptiformicaMap.drawn());
const apiGraph = (page: Page) => page.evaluate(async () => (await (await fetch("/api/graph")).json()) as MapGraph);
const pairId = (a: string, b: string) => (a < b ? `${a}~${b}` : `${b}~${a}`);

describe("the mesh map on a lab cluster", { skip, timeout: 170_000 }, () => {
  let lab: Lab;
  let c: LabCluster;
  let browser: Browser | undefined;
  let page: Page;
  let members: Member[] = [];
  const children: ChildProcess[] = [];

  /** etcdctl on member n0, with its certificates. */
  const etcdctl = (...args: string[]) => {
    const tls = join(lab.nodes[0]!.cacheDir, "node", "etcd", "tls");
    return lab.exec(0, ["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "--dial-timeout", "3s", ...args], {
      env: { ETCDCTL_API: "3" },
    });
  };

  /** The link reports in the KV as a member's map reads them. */
  const reportsInKv = async (): Promise<LinkReport[]> => {
    const r = await etcdctl("get", "--prefix", "raptiformica/links/", "-w", "json");
    assert.equal(r.exitCode, 0, r.stderr);
    const kvs = (JSON.parse(r.stdout) as { kvs?: { key: string; value: string }[] }).kvs ?? [];
    return kvs.flatMap((kv) => {
      const p = parseLinkReport(Buffer.from(kv.key, "base64").toString(), Buffer.from(kv.value, "base64").toString());
      return p.ok ? [p.report] : [];
    });
  };

  /** The pairs of members some report says are peered and up: the links the page must draw. */
  const upPairs = (reports: readonly LinkReport[]) => {
    const keys = new Set(members.map((m) => m.publicKey));
    const pairs = new Set<string>();
    for (const r of reports) for (const p of r.peerings) if (p.up && p.key && keys.has(r.publicKey) && keys.has(p.key) && p.key !== r.publicKey) pairs.add(pairId(r.publicKey, p.key));
    return [...pairs].sort();
  };

  before(async () => {
    lab = await Lab.create({ nodes: 5, topology: "full" });
    c = await new LabCluster(lab).form(4, { joins: "together", meshTimeoutMs: 120_000, aliveTimeoutMs: 90_000 });
    members = (await c.members(0)).members as Member[];
    browser = await launchChromium({ netns: lab.nodes[0]!.ns });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });

  after(async () => {
    for (const ch of children) if (ch.exitCode === null) ch.kill("SIGKILL");
    await browser?.close();
    await lab?.destroy();
  });

  it("a member serves the page: the 4 members and the links that exist, this member marked; /api/graph agrees with `members`", async () => {
    await page.goto(`http://127.0.0.1:${MAP_PORT}/`);
    await page.waitForFunction(() => document.querySelectorAll('#nodes-table tbody tr[data-status="alive"]').length === 4, null, { timeout: 30_000 });
    await page.waitForFunction(() => document.documentElement.dataset["layout"] === "stopped", null, { timeout: 15_000 });
    const self = members.find((m) => m.name === "n0")!.publicKey;
    // The same rows as `members`, read at about the same time (a role can move between reads: asked again).
    await waitFor(
      "/api/graph and members agree",
      async () => {
        const [g, m] = await Promise.all([apiGraph(page), c.members(0)]);
        const fromApi = g.nodes.map((n) => [n.name, n.id, n.meshAddress, n.host ?? "", n.status, n.role ?? ""]).sort();
        const fromMembers = m.members.map((x) => [x.name, (x as Member).publicKey, x.meshAddress, (x as Member).host ?? "", x.status, x.role ?? ""]).sort();
        assert.deepEqual(fromApi, fromMembers);
        assert.equal(g.self, self);
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    const d = await drawn(page);
    assert.deepEqual(d.nodes.map((n) => n.name).sort(), ["n0", "n1", "n2", "n3"]);
    assert.deepEqual(d.nodes.filter((n) => n.self).map((n) => n.name), ["n0"]);
    // The links drawn are the ones the members report up (none while no member reports its links).
    await waitFor(
      "the drawn links are the reported ones",
      async () => {
        const [reports, now] = await Promise.all([reportsInKv(), drawn(page)]);
        assert.deepEqual(now.edges.map((e) => e.id).sort(), upPairs(reports));
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    await page.screenshot({ path: join(artifactsDir(), "lab-4-members.png") });
  });

  it("links from the members' reports are drawn; a link reported down disappears without a reload", async (t) => {
    // Whether the members write their link reports themselves: then the next test cuts a real link.
    const real = await waitFor("a link report from a member", async () => ((await reportsInKv()).length > 0 ? true : false), { timeoutMs: 12_000, intervalMs: 1000 }).catch(() => false);
    if (real) {
      t.skip("the members write their own link reports (raptiformica/links/): the cut-link test checks real ones");
      return;
    }
    // Reports as a member writes them, put by hand: n0–n1, n0–n2, n1–n2 up (both ends), n2–n3 from n2 only.
    const key = (name: string) => members.find((m) => m.name === name)!.publicKey;
    const peer = (name: string, up = true) => ({ key: key(name), remote: `tcp://${members.find((m) => m.name === name)!.host}:4863`, inbound: false, up, latencyMs: 0.8, rxBytes: 120_000, txBytes: 80_000, uptimeSeconds: 42 });
    const put = async (name: string, peerings: ReturnType<typeof peer>[]) => {
      const r = await etcdctl("put", `raptiformica/links/${key(name)}`, JSON.stringify({ v: 1, publicKey: key(name), reportedAt: Date.now(), yggdrasilMajor: "0.5", peerings }));
      assert.equal(r.exitCode, 0, r.stderr);
    };
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await put("n0", [peer("n1"), peer("n2")]);
    await put("n1", [peer("n0"), peer("n2")]);
    await put("n2", [peer("n0"), peer("n1"), peer("n3")]);
    const want = [pairId(key("n0"), key("n1")), pairId(key("n0"), key("n2")), pairId(key("n1"), key("n2")), pairId(key("n2"), key("n3"))].sort();
    await waitFor("4 links drawn", async () => JSON.stringify((await drawn(page)).edges.map((e) => e.id).sort()) === JSON.stringify(want), { timeoutMs: 15_000, intervalMs: 200 });
    await page.screenshot({ path: join(artifactsDir(), "lab-reported-links.png") });
    // n1–n2 goes down at both ends.
    const cutAt = Date.now();
    await put("n1", [peer("n0"), peer("n2", false)]);
    await put("n2", [peer("n0"), peer("n1", false), peer("n3")]);
    const gone = pairId(key("n1"), key("n2"));
    await waitFor("the n1–n2 link gone from the drawing", async () => !(await drawn(page)).edges.some((e) => e.id === gone), { timeoutMs: 15_000, intervalMs: 100 });
    t.diagnostic(`a link reported down left the page ${Date.now() - cutAt} ms after the reports were written`);
    assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, "no reload");
    const api = await apiGraph(page);
    assert.equal(api.links.find((l) => l.id === gone)?.up, false, "/api/graph has it down");
    assert.match((await page.locator(`#links-table tr[data-id="${gone}"]`).textContent()) ?? "", /down/);
    const r = await etcdctl("del", "--prefix", "raptiformica/links/");
    assert.equal(r.exitCode, 0, r.stderr);
    await waitFor("no links drawn", async () => (await drawn(page)).edges.length === 0, { timeoutMs: 15_000, intervalMs: 200 });
  });

  it("a link cut between two members disappears from the page", async (t) => {
    const reports = await reportsInKv();
    if (reports.length === 0) {
      t.skip("no member writes link reports yet (raptiformica/links/ is empty): nothing can show a real link go");
      return;
    }
    // Two members other than n0 (whose page this is) with a link up between them.
    const byKey = new Map(members.map((m) => [m.publicKey, m.name]));
    const candidates = upPairs(reports).filter((id) => !id.split("~").includes(members.find((m) => m.name === "n0")!.publicKey));
    assert.ok(candidates.length > 0, `no link between two members other than n0 is up: ${JSON.stringify(upPairs(reports))}`);
    const id = candidates[0]!;
    const [a, b] = id.split("~").map((k) => Number(byKey.get(k)!.slice(1))) as [number, number];
    const peerAddresses = async (i: number) => {
      const r = await lab.exec(i, ["ip", "-br", "address", "show", "dev", "seg0"]);
      return r.stdout.trim().split(/\s+/).slice(2).map((x) => x.split("/")[0]!);
    };
    // Everything between a and b dropped in a's namespace: IPv4 and the link-local IPv6 multicast peering uses.
    for (const addr of await peerAddresses(b)) {
      const tool = addr.includes(":") ? "ip6tables" : "iptables";
      for (const rule of [["-A", "INPUT", "-s", addr, "-j", "DROP"], ["-A", "OUTPUT", "-d", addr, "-j", "DROP"]]) {
        const r = await lab.exec(a, [tool, ...rule]);
        assert.equal(r.exitCode, 0, r.stderr);
      }
    }
    const cutAt = Date.now();
    await waitFor(`the n${a}–n${b} link gone from the drawing`, async () => !(await drawn(page)).edges.some((e) => e.id === id), { timeoutMs: 90_000, intervalMs: 500 });
    t.diagnostic(`the cut n${a}–n${b} link left the page after ${((Date.now() - cutAt) / 1000).toFixed(1)} s`);
    await page.screenshot({ path: join(artifactsDir(), "lab-link-cut.png") });
  });

  it("a killed member is shown failed without a reload, within the node record's TTL and a few seconds", async (t) => {
    const ttl = Number((await c.rf(0, ["config", "get", "meshnet/etcd/node_ttl"])).stdout.trim()) || 5;
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    // A proxy when there is one (4 members: 3 voters and 1 proxy): its record lapses with its
    // lease while etcd's raft is untouched, so the time measured is the record's and the map's.
    const now = (await c.members(0)).members as Member[];
    const victim = now.find((m) => m.role === "proxy" && m.name !== "n0") ?? now.find((m) => m.name === "n3")!;
    const index = Number(victim.name.slice(1));
    const killedAt = Date.now();
    await lab.killNode(index);
    await page.waitForFunction((id) => document.querySelector(`#nodes-table tr[data-id="${id}"]`)?.getAttribute("data-status") === "failed", victim.publicKey, { timeout: 60_000, polling: 100 });
    const seconds = (Date.now() - killedAt) / 1000;
    t.diagnostic(`${victim.name} (${victim.role}) shown failed ${seconds.toFixed(1)} s after it was killed (node_ttl ${ttl} s)`);
    console.log(`map: ${victim.name} (${victim.role}) shown failed ${seconds.toFixed(1)} s after the kill (node_ttl ${ttl} s)`);
    const d = await drawn(page);
    assert.equal(d.nodes.find((n) => n.id === victim.publicKey)?.status, "failed");
    assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, "no reload");
    // The record lapses after the TTL; etcd checks leases every 500 ms; the page hears of it at once.
    if (ttl + 5 <= 10) assert.ok(seconds <= 10, `shown failed after ${seconds.toFixed(1)} s, more than 10 s`);
    await page.screenshot({ path: join(artifactsDir(), "lab-member-failed.png") });
  });

  it("`raptiformica map` from an operator machine prints a URL that serves the page, and closes the tunnel on SIGTERM", async () => {
    const op = lab.nodes[OPERATOR]!;
    mkdirSync(join(op.home, ".ssh"), { recursive: true, mode: 0o700 });
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(op.home, ".ssh", "id_ed25519")]);
    const pub = readFileSync(join(op.home, ".ssh", "id_ed25519.pub"), "utf8");
    const alive = ((await c.members(0)).members as Member[]).filter((m) => m.status === "alive").map((m) => Number(m.name.slice(1)));
    for (const i of alive) await startSshd(lab, i, pub, { env: { RAPTIFORMICA_CACHE_DIR: lab.nodes[i]!.cacheDir } });
    mkdirSync(op.cacheDir, { recursive: true, mode: 0o700 });
    const config = JSON.parse(readFileSync(join(lab.nodes[0]!.cacheDir, "mutable_config.json"), "utf8")) as Record<string, string>;
    config["raptiformica/remote/command"] = join(ROOT, "bin", "raptiformica");
    writeFileSync(join(op.cacheDir, "mutable_config.json"), JSON.stringify(config), { mode: 0o600 });

    const child = spawn("ip", ["netns", "exec", op.ns, BIN, "map"], {
      env: { HOME: op.home, RAPTIFORMICA_CACHE_DIR: op.cacheDir, PATH: labMemberPath() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const url = await waitFor("the URL on the first line", () => (stdout.includes("\n") ? stdout.split("\n")[0] : child.exitCode !== null ? Promise.reject(new Error(`exited ${child.exitCode}: ${stderr}`)) : false), {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(stderr, /the map of root@198\.18\.0\.\d+, through an SSH tunnel/);

    const opBrowser = await launchChromium({ netns: op.ns });
    try {
      const p = await opBrowser.newPage({ viewport: { width: 1280, height: 800 } });
      await p.goto(url);
      await p.waitForFunction(() => document.querySelectorAll("#nodes-table tbody tr").length === 4, null, { timeout: 30_000 });
      const g = await apiGraph(p);
      assert.deepEqual(g.nodes.map((n) => n.name).sort(), ["n0", "n1", "n2", "n3"]);
      const served = g.nodes.find((n) => n.self);
      assert.ok(served && alive.includes(Number(served.name.slice(1))), `the page of a member with sshd: ${served?.name}`);
      await p.screenshot({ path: join(artifactsDir(), "operator-map.png") });
    } finally {
      await opBrowser.close();
    }

    child.kill("SIGTERM");
    await waitFor("map exited", () => child.exitCode !== null || child.signalCode !== null, { timeoutMs: 10_000, intervalMs: 100 });
    const port = new URL(url).port;
    await waitFor(
      "the tunnel's port closed",
      async () => (await lab.exec(OPERATOR, ["ss", "-Htln", `sport = :${port}`])).stdout.trim() === "",
      { timeoutMs: 10_000, intervalMs: 200 },
    );
  });
});
