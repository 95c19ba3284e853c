import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { endianness, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connectionFilter } from "../../src/mesh/socket-destroy.ts";
import { StallWatch, parseTcpTable, readTcpTable, socketInodes, type TcpConnection } from "../../src/mesh/stalled-peerings.ts";
import { run } from "../../src/util/exec.ts";

// The kernel's TCP table (Linux 6.1) of a client writing 100 bytes every 200 ms to 10.99.8.2:4863:
// its route to the far end a blackhole for about 0.75 s (timer 04, probes rising), or the far
// end's replies dropped for about 1 s (timer 01, retransmissions rising); a listener, a healthy
// IPv6 connection on ::1 and a v4-mapped one.
const HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const BLACKHOLED = "   0: 0108630A:BD4A 0208630A:12FF 01 000002BC:00000000 04:00000005 00000000     0        2 174426 2 00000000a1";
const DROPPED = "   0: 0108630A:BD52 0208630A:12FF 01 00000384:00000000 01:00000000 00000002     0        0 175890 2 0000000073";
const TABLE6 = [
  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 00000000000000000000000001000000:B820 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 177342 1 00000000b38d96dd 100 0 0 10 0",
  "   1: 00000000000000000000000001000000:B820 00000000000000000000000001000000:971E 01 00000000:00000000 00:00000000 00000000     0        0 177344 1 000000003e2cb0d7 20 0 0 10 -1",
  "   2: 0000000000000000FFFF00000100007F:12FF 0000000000000000FFFF00000200007F:971F 01 00000000:00000000 00:00000000 00000000     0        0 177345 1 000000003e2cb0d7 20 0 0 10 -1",
  "   3: 000080FE00000000FF3412AB78563412:12FF 0000C0FD000000000000000001000000:9720 01 00000000:00000000 00:00000000 00000000     0        0 177346 1 000000003e2cb0d7 20 0 0 10 -1",
].join("\n");

describe("stalled peerings (mesh/stalled-peerings.ts)", () => {
  it("reads the kernel's TCP table: established connections' ends, send queue, inode and sends unanswered (retransmissions or probes)", { skip: endianness() === "LE" ? false : "the fixtures are of a little-endian machine" }, () => {
    assert.deepEqual(parseTcpTable(`${HEADER}\n${BLACKHOLED}\n${DROPPED}\n`), [
      { local: { host: "10.99.8.1", port: 48458 }, peer: { host: "10.99.8.2", port: 4863 }, sendQueue: 700, inode: 174426, unanswered: 2 },
      { local: { host: "10.99.8.1", port: 48466 }, peer: { host: "10.99.8.2", port: 4863 }, sendQueue: 900, inode: 175890, unanswered: 2 },
    ]);
    assert.deepEqual(
      parseTcpTable(TABLE6).map((c) => [c.local, c.peer, c.inode]),
      [
        [{ host: "::1", port: 47136 }, { host: "::1", port: 38686 }, 177344],
        [{ host: "127.0.0.1", port: 4863 }, { host: "127.0.0.2", port: 38687 }, 177345],
        [{ host: "fe80::ab12:34ff:1234:5678", port: 4863 }, { host: "fdc0::1", port: 38688 }, 177346],
      ],
      "the listener is left out; a v4-mapped peer reads as IPv4",
    );
    assert.deepEqual(parseTcpTable("garbage\n   0: zz:1 yy:2 01 x\n"), []);
  });

  it("stalled: data waiting, two sends in a row unanswered, and that held for half a second; only among the given sockets", () => {
    const [c] = parseTcpTable(DROPPED);
    const conn = c!;
    const ours = new Set([conn.inode]);
    const w = new StallWatch();
    assert.deepEqual(w.observe([conn], ours, 1000), [], "first seen unanswered: not yet");
    assert.deepEqual(w.observe([conn], ours, 1400), [], "held 0.4 s");
    assert.deepEqual(w.observe([conn], ours, 1500), [conn], "held 0.5 s");
    assert.equal(w.heldMs(conn, 1500), 500);
    assert.deepEqual(new StallWatch().observe([conn], new Set([1]), 0).length + new StallWatch().observe([conn], new Set([1]), 600).length, 0, "another process's connection is not ours to close");

    const once = new StallWatch();
    once.observe([{ ...conn, unanswered: 1 }], ours, 0);
    assert.deepEqual(once.observe([{ ...conn, unanswered: 1 }], ours, 2000), [], "one retransmission is a lost segment, not a dead path");
    assert.equal(once.observe([conn], ours, 2100).length, 1, "held since the first unanswered send was seen");

    const answered = new StallWatch();
    answered.observe([conn], ours, 0);
    answered.observe([{ ...conn, unanswered: 0 }], ours, 300);
    assert.deepEqual(answered.observe([conn], ours, 600), [], "an answer in between starts the clock again");
    assert.equal(answered.observe([conn], ours, 1100).length, 1);

    const idle = new StallWatch();
    idle.observe([{ ...conn, sendQueue: 0 }], ours, 0);
    assert.deepEqual(idle.observe([{ ...conn, sendQueue: 0 }], ours, 5000), [], "nothing waiting: nothing to judge by");
  });

  const root = process.getuid?.() === 0;
  for (const [where, cut] of [
    ["route turned into a blackhole", "near"],
    ["far end's replies are dropped", "far"],
  ] as const) {
    it(`on a real kernel: a connection whose ${where} is found stalled and closed, its process told`, { skip: root ? false : "needs root to make network namespaces", timeout: 30_000 }, async () => {
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
        // `ip netns exec` execs the program: the child's pid is the client's, its /proc/<pid>/net the namespace's.
        const client = spawn("ip", ["netns", "exec", a, process.execPath, script, "client"], { stdio: ["ignore", "pipe", "inherit"] });
        children.push(client);
        let said = "";
        client.stdout!.on("data", (d: Buffer) => (said += d.toString()));
        const exited = new Promise<number | null>((r) => client.on("exit", (code) => r(code)));
        for (let i = 0; i < 50 && !said.includes("connected"); i++) await new Promise((r) => setTimeout(r, 100));
        assert.match(said, /connected/);
        const table = () => readTcpTable(client.pid!, [4863]) ?? [];
        const sockets = socketInodes(client.pid!);
        assert.ok(sockets.size > 0, "the client's socket inodes are read from /proc");
        assert.equal(table().filter((c) => sockets.has(c.inode)).length, 1, "its connection is in the table");
        const watch = new StallWatch();
        for (let i = 0; i < 4; i++) {
          assert.deepEqual(watch.observe(table(), sockets, Date.now()), [], "a live connection is not stalled");
          await new Promise((r) => setTimeout(r, 250));
        }
        if (cut === "near") await ip("-n", a, "route", "add", "blackhole", "10.99.7.2/32");
        else await ip("-n", b, "route", "add", "blackhole", "10.99.7.1/32");
        const t0 = Date.now();
        let stalled: TcpConnection[] = [];
        for (let i = 0; i < 40 && stalled.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 250));
          stalled = watch.observe(table(), sockets, Date.now());
        }
        const found = Date.now() - t0;
        assert.equal(stalled.length, 1, "found stalled within 10 s of the cut");
        console.log(`${cut} cut: found stalled ${found} ms after it (looked at every 250 ms)`);
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
  }
});
