import { strict as assert } from "node:assert";
import { connect, createServer } from "node:net";
import { describe, it } from "node:test";
import { NO_VERDICT, UpstreamWatch, judgeUpstreams, type UpstreamVerdict } from "../../src/node/upstream-watch.ts";
import { hostAnswers } from "../../src/util/tcp-probe.ts";
import { ProbeListener } from "../../src/node/probe-listener.ts";
import type { Logger } from "../../src/util/log.ts";

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
    w.follow([A, B], 4864);
    try {
      await w.round();
      assert.deepEqual(seen, []);
      alive.delete("200::b");
      await w.round();
      assert.deepEqual(seen, [["200::b"]]);
      assert.deepEqual([...w.down], ["200::b"]);
      alive.add("200::b");
      await w.round();
      assert.deepEqual(seen, [["200::b"]], "one answered probe is not enough to come back");
      await w.round();
      assert.deepEqual(seen, [["200::b"], []]);
      alive.delete("200::b");
      await w.round();
      w.follow([]);
      assert.deepEqual(seen, [["200::b"], [], ["200::b"], []]);
    } finally {
      w.stop();
    }
  });

  it("asks for a reconnect when its voters answer again after none could be reached for 2 s or more, not after a shorter silence", async () => {
    let up = true;
    let t = 0;
    let changes = 0;
    const w = new UpstreamWatch({ probe: async () => up, onChange: () => void changes++, intervalMs: 3_600_000, now: () => t });
    w.follow([A, B], 4864);
    try {
      await w.round();
      up = false;
      for (t = 1000; t <= 2500; t += 500) await w.round();
      assert.deepEqual([...w.down], [], "none answering: nothing left out (most likely this node's fault)");
      assert.equal(w.takeReconnect(), undefined, "still silent");
      up = true;
      t = 3000;
      await w.round();
      assert.deepEqual(w.takeReconnect(), { silentMs: 2000 });
      assert.equal(changes, 1, "the agent is woken to restart the proxy");
      assert.equal(w.takeReconnect(), undefined, "taken once");
      up = false;
      t = 4000;
      await w.round();
      up = true;
      t = 5500;
      await w.round();
      assert.equal(w.takeReconnect(), undefined, "1.5 s of silence: gRPC reconnects soon enough");
    } finally {
      w.stop();
    }
  });

  it("probes each voter's host on the liveness port with the given timeout", async () => {
    const asked: string[] = [];
    const w = new UpstreamWatch({ probe: async (h, p, t) => (asked.push(`${h} ${p} ${t}`), true), onChange: () => {}, intervalMs: 3_600_000, timeoutMs: 700 });
    w.follow([A, "https://[200:0:0:0:0:0:0:c]:2400"], 4864);
    try {
      await w.round();
    } finally {
      w.stop();
    }
    assert.deepEqual(asked, ["200::a 4864 700", "200::c 4864 700"]);
  });
});

describe("hostAnswers", () => {
  it("is true for a listening port and for a refused one (the host is up)", async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(await hostAnswers("127.0.0.1", port, 1000), true);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal(await hostAnswers("127.0.0.1", port, 1000), true, "refused");
  });
});

describe("ProbeListener (the agent's liveness port)", () => {
  it("accepts on the address and port it is given, moves when they change, and stops", async () => {
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (m: string) => warnings.push(m), debug: () => {}, error: () => {} } as unknown as Logger;
    const l = new ProbeListener(log);
    const free = async () => {
      const s = createServer();
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      const p = (s.address() as { port: number }).port;
      await new Promise((r) => s.close(r));
      return p;
    };
    const [p1, p2] = [await free(), await free()];
    const accepted = (port: number) =>
      new Promise<boolean>((resolve) => {
        const c = connect({ host: "127.0.0.1", port });
        c.once("connect", () => (c.destroy(), resolve(true)));
        c.once("error", () => resolve(false));
      });
    try {
      await l.ensure("127.0.0.1", p1);
      assert.equal(await accepted(p1), true);
      await l.ensure("127.0.0.1", p2);
      assert.equal(await accepted(p2), true);
      assert.equal(await accepted(p1), false, "the old port is let go");
    } finally {
      l.stop();
    }
    assert.equal(await accepted(p2), false);
    assert.deepEqual(warnings, []);
  });
});
