import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connectionFilter } from "../../src/mesh/socket-destroy.ts";
import { parseSs, socketInodes, stalledConnections } from "../../src/mesh/stalled-peerings.ts";
import { run } from "../../src/util/exec.ts";

// `ss -tieH state established` (iproute2 6.1) in a namespace whose route to the far end had
// become a blackhole 3.5 s before: a client writing 100 bytes every 200 ms.
const STALLED = [
  "0      1800   10.99.0.1:36352 10.99.0.2:4863 ino:6925801 sk:3 cgroup:unreachable:1 <->",
  "\t bbr wscale:10,10 rto:204 backoff:4 rtt:0.05/0.031 mss:1448 pmtu:1500 rcvmss:536 advmss:1448 cwnd:14 bytes_sent:20348 bytes_acked:401 segs_out:32 segs_in:5 data_segs_out:30 bbr:(bw:551619008bps,mrtt:0.021,pacing_gain:2.88672,cwnd_gain:2.88672) send 3243520000bps lastsnd:44 lastrcv:4460 lastack:3652 pacing_rate 4941097208bps delivery_rate 551619040bps delivered:5 app_limited busy:3452ms rcv_space:14480 rcv_ssthresh:64088 notsent:1800 minrtt:0.021 snd_wnd:65536",
].join("\n");
// A live peering of a lab member (yggdrasil 0.4), and an IPv6 one with a scope, both healthy.
const HEALTHY = [
  "0      0               198.18.0.1:34954          198.18.0.2:4863  ino:6925695 sk:ea cgroup:unreachable:1 <->",
  "\t cubic wscale:7,7 rto:204 rtt:0.2/0.1 mss:1448 cwnd:10 bytes_sent:9000 bytes_acked:9001 lastsnd:368 lastrcv:368 lastack:324 minrtt:0.02",
  "0      0      [fe80::1%eth0]:4863 [fe80::2%eth0]:40000 ino:6926560 sk:eb <->",
  "\t cubic wscale:7,7 rto:204 rtt:0.2/0.1 lastsnd:20 lastrcv:20 lastack:20",
].join("\n");

describe("stalled peerings (mesh/stalled-peerings.ts)", () => {
  it("reads ss's connections: ends, send queue, processes, backoff and the last ACK's age", () => {
    const [c, ...rest] = parseSs(`${STALLED}\n${HEALTHY}\n`);
    assert.deepEqual(c, { local: { host: "10.99.0.1", port: 36352 }, peer: { host: "10.99.0.2", port: 4863 }, sendQueue: 1800, inode: 6925801, backoff: 4, lastAckMs: 3652 });
    assert.deepEqual(
      rest.map((r) => [r.local, r.peer, r.sendQueue, r.backoff, r.lastAckMs]),
      [
        [{ host: "198.18.0.1", port: 34954 }, { host: "198.18.0.2", port: 4863 }, 0, 0, 324],
        [{ host: "fe80::1", port: 4863 }, { host: "fe80::2", port: 40000 }, 0, 0, 20],
      ],
    );
    assert.deepEqual(parseSs("garbage\n\tfoo:1\n"), []);
  });

  it("a connection is stalled only with data queued, the timer backed off and no ACK for a while, and only among the given sockets", () => {
    const conns = parseSs(`${STALLED}\n${HEALTHY}`);
    const ours = new Set([6925801, 6925695, 6926560]);
    assert.deepEqual(stalledConnections(conns, ours).map((c) => c.inode), [6925801], "healthy peerings are left alone");
    assert.equal(stalledConnections(conns, new Set([6925695])).length, 0, "another process's connection is not ours to close");
    const [c] = conns;
    assert.equal(stalledConnections([{ ...c!, backoff: 1 }], ours).length, 0, "one backoff is a lost segment, not a dead path");
    assert.equal(stalledConnections([{ ...c!, backoff: 2, lastAckMs: 1000 }], ours).length, 1);
    assert.equal(stalledConnections([{ ...c!, lastAckMs: 900 }], ours).length, 0, "an ACK within the last second");
    assert.equal(stalledConnections([{ ...c!, sendQueue: 0 }], ours).length, 0, "nothing waiting: nothing to judge by");
  });

  const root = process.getuid?.() === 0;
  it("on a real kernel: a connection whose route turned into a blackhole is found stalled and closed, its process told", { skip: root ? false : "needs root to make network namespaces", timeout: 30_000 }, async () => {
    const tag = randomBytes(3).toString("hex");
    const [a, b] = [`rfst-${tag}-a`, `rfst-${tag}-b`];
    const ip = async (...args: string[]) => {
      const r = await run("ip", args);
      assert.equal(r.exitCode, 0, `ip ${args.join(" ")}: ${r.stderr}`);
    };
    const script = join(tmpdir(), `rfst-${tag}.mjs`);
    writeFileSync(
      script,
      `import net from "node:net";
if (process.argv[2] === "server") net.createServer((s) => { s.on("data", () => {}); s.on("error", () => {}); }).listen(4863, "10.99.7.2");
else { const c = net.connect(4863, "10.99.7.2", () => { console.log("connected"); setInterval(() => c.write("x".repeat(100)), 200); }); c.on("error", (e) => { console.log(e.code); process.exit(0); }); setTimeout(() => process.exit(3), 25000); }
`,
    );
    const children: ReturnType<typeof spawn>[] = [];
    try {
      await ip("netns", "add", a);
      await ip("netns", "add", b);
      await ip("link", "add", `v${tag}a`, "netns", a, "type", "veth", "peer", "name", `v${tag}b`, "netns", b);
      await ip("-n", a, "addr", "add", "10.99.7.1/24", "dev", `v${tag}a`);
      await ip("-n", b, "addr", "add", "10.99.7.2/24", "dev", `v${tag}b`);
      await ip("-n", a, "link", "set", `v${tag}a`, "up");
      await ip("-n", b, "link", "set", `v${tag}b`, "up");
      const server = spawn("ip", ["netns", "exec", b, process.execPath, script, "server"], { stdio: "ignore" });
      children.push(server);
      await new Promise((r) => setTimeout(r, 500));
      const client = spawn("ip", ["netns", "exec", a, process.execPath, script, "client"], { stdio: ["ignore", "pipe", "inherit"] });
      children.push(client);
      let said = "";
      client.stdout!.on("data", (d: Buffer) => (said += d.toString()));
      const exited = new Promise<number | null>((r) => client.on("exit", (code) => r(code)));
      for (let i = 0; i < 50 && !said.includes("connected"); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(said, /connected/);
      const ss = async () => parseSs((await run("ip", ["netns", "exec", a, "ss", "-tieH", "state", "established"])).stdout);
      const sockets = socketInodes(client.pid!);
      assert.ok(sockets.size > 0, "the client's socket inodes are read from /proc");
      assert.equal((await ss()).filter((c) => c.inode !== undefined && sockets.has(c.inode)).length, 1, "its connection is listed");
      assert.equal(stalledConnections(await ss(), sockets).length, 0, "a live connection is not stalled");
      await ip("-n", a, "route", "add", "blackhole", "10.99.7.2/32");
      let stalled: ReturnType<typeof stalledConnections> = [];
      for (let i = 0; i < 40 && stalled.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 250));
        stalled = stalledConnections(await ss(), sockets);
      }
      assert.equal(stalled.length, 1, "found stalled within 10 s of the blackhole");
      const killed = await run("ip", ["netns", "exec", a, "ss", "-K", "-t", ...connectionFilter(stalled[0]!)]);
      assert.equal(killed.exitCode, 0, killed.stderr);
      assert.equal(await exited, 0);
      assert.match(said, /ECONNABORTED/, "the process holding it got the abort");
    } finally {
      for (const c of children) c.kill("SIGKILL");
      await run("ip", ["netns", "del", a]);
      await run("ip", ["netns", "del", b]);
    }
  });
});
