import { strict as assert } from "node:assert";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { NO_VERDICT, UpstreamWatch, judgeUpstreams, type UpstreamVerdict } from "../../src/node/upstream-watch.ts";
import { canConnect } from "../../src/util/tcp-probe.ts";
import { parseTcp6Table, type TcpSocket } from "../../src/util/tcp-table.ts";

const round = (o: Record<string, boolean>) => new Map(Object.entries(o));
const rounds = (...rs: Record<string, boolean>[]): UpstreamVerdict => rs.reduce<UpstreamVerdict>((v, r) => judgeUpstreams(v, round(r)), NO_VERDICT);

describe("judgeUpstreams (a proxy node's voters)", () => {
  it("leaves a voter out at its first miss while another answered", () => {
    assert.deepEqual([...rounds({ a: true, b: true, c: true }, { a: true, b: false, c: true }).down], ["b"]);
  });
  it("leaves no one out when no voter answered (the fault is most likely this node's)", () => {
    assert.deepEqual([...rounds({ a: false, b: false, c: false }, { a: false, b: false, c: false }).down], []);
  });
  it("keeps a left-out voter out while nobody answers, and the others in", () => {
    assert.deepEqual([...rounds({ a: true, b: false }, { a: false, b: false }).down], ["b"]);
  });
  it("takes a voter back after two answered rounds in a row, not one", () => {
    const out = rounds({ a: true, b: false });
    const once = judgeUpstreams(out, round({ a: true, b: true }));
    assert.deepEqual([...once.down], ["b"]);
    assert.deepEqual([...judgeUpstreams(once, round({ a: true, b: true })).down], []);
    // A flapping voter: answered, missed, answered — stays out.
    const flap = [{ a: true, b: true }, { a: true, b: false }, { a: true, b: true }].reduce((v, r) => judgeUpstreams(v, round(r)), out);
    assert.deepEqual([...flap.down], ["b"]);
  });
  it("forgets hosts that are no longer followed", () => {
    const v = judgeUpstreams(rounds({ a: true, b: false }), round({ a: true, c: true }));
    assert.deepEqual([...v.down], []);
    assert.deepEqual([...v.streak.keys()].sort(), ["a", "c"]);
  });
});

describe("UpstreamWatch", () => {
  const A = "https://[200::a]:2379";
  const B = "https://[200::b]:2379";
  const stalled = (host: string, retransmits: number): TcpSocket => ({ remoteAddress: host, remotePort: 2379, txQueue: 120, retransmits });

  it("probes no one while no connection to a voter stalls", async () => {
    const asked: string[] = [];
    const w = new UpstreamWatch({ probe: async (h) => (asked.push(h), true), sockets: async () => [stalled("200::a", 1)], onChange: () => {}, intervalMs: 3_600_000 });
    w.follow([A, B]);
    try {
      await w.round();
    } finally {
      w.stop();
    }
    assert.deepEqual(asked, []);
  });

  it("probes a voter whose connection stalls, leaves it out when it does not answer, and takes it back", async () => {
    const alive = new Set(["200::a"]);
    let table: TcpSocket[] = [stalled("200::b", 2)];
    const asked: string[] = [];
    const seen: string[][] = [];
    const w = new UpstreamWatch({ probe: async (h, p, t) => (asked.push(`${h} ${p} ${t}`), alive.has(h)), sockets: async () => table, onChange: (d) => seen.push([...d]), intervalMs: 3_600_000, timeoutMs: 700 });
    w.follow([A, B]);
    try {
      await w.round();
      assert.deepEqual(asked, ["200::b 2379 700"]);
      assert.deepEqual(seen, [["200::b"]]);
      // Left out, it is probed each round even with no stalled connection left.
      table = [];
      alive.add("200::b");
      await w.round();
      await w.round();
      assert.deepEqual(seen, [["200::b"], []]);
      w.follow([]);
      assert.deepEqual(seen, [["200::b"], []]);
    } finally {
      w.stop();
    }
  });

  it("matches the voter's address whatever way it is written", async () => {
    const asked: string[] = [];
    const w = new UpstreamWatch({ probe: async (h) => (asked.push(h), true), sockets: async () => [stalled("200::b", 3)], onChange: () => {}, intervalMs: 3_600_000 });
    w.follow([A, "https://[200:0:0:0:0:0:0:b]:2379"]);
    try {
      await w.round();
    } finally {
      w.stop();
    }
    assert.deepEqual(asked, ["200::b"]);
  });
});

describe("parseTcp6Table (/proc/net/tcp6)", () => {
  const header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
  // 200:1234::b port 2379 (0x094B), written as the kernel does on little-endian machines.
  const line = "   3: 00000000000000000000000001000000:D3A2 3412000200000000000000000B000000:094B 01 0000007A:00000000 01:0000002A 00000003     0        0 12345 1 0000000000000000 20 4 30 10 -1";
  it("reads the remote address, port, unacknowledged bytes and retransmissions", () => {
    const [s] = parseTcp6Table(`${header}\n${line}\n`, true);
    assert.deepEqual(s, { remoteAddress: "200:1234::b", remotePort: 2379, txQueue: 122, retransmits: 3 });
  });
  it("skips what it cannot read", () => {
    assert.deepEqual(parseTcp6Table(`${header}\n   4: garbage\n`, true), []);
  });
});

describe("canConnect", () => {
  it("is true for a listening port and false for a closed one", async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(await canConnect("127.0.0.1", port, 1000), true);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal(await canConnect("127.0.0.1", port, 1000), false);
  });
});
