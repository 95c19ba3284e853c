import { strict as assert } from "node:assert";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { NO_VERDICT, UpstreamWatch, judgeUpstreams, type UpstreamVerdict } from "../../src/node/upstream-watch.ts";
import { canConnect } from "../../src/util/tcp-probe.ts";

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
  it("reports the hosts to leave out when the set changes, and clears them when it stops following", async () => {
    const alive = new Set(["200::a", "200::b"]);
    const seen: string[][] = [];
    const w = new UpstreamWatch({ probe: async (h) => alive.has(h), onChange: (d) => seen.push([...d]), intervalMs: 3_600_000 });
    w.follow([A, B]);
    try {
      await w.round();
      assert.deepEqual(seen, []);
      alive.delete("200::b");
      await w.round();
      await w.round();
      assert.deepEqual(seen, [["200::b"]]);
      w.follow([]);
      assert.deepEqual(seen, [["200::b"], []]);
    } finally {
      w.stop();
    }
  });
  it("probes each voter's client port with the given timeout", async () => {
    const asked: string[] = [];
    const w = new UpstreamWatch({ probe: async (h, p, t) => (asked.push(`${h} ${p} ${t}`), true), onChange: () => {}, intervalMs: 3_600_000, timeoutMs: 700 });
    w.follow([A, "https://[200::c]:2400"]);
    try {
      await w.round();
    } finally {
      w.stop();
    }
    assert.deepEqual(asked, ["200::a 2379 700", "200::c 2400 700"]);
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
