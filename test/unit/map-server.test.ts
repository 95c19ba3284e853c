import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { request, createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LocalConfig } from "../../src/config/local.ts";
import { cachePaths } from "../../src/config/paths.ts";
import { DEFAULT_SETTINGS } from "../../src/consensus/settings.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { GraphFeed, type FeedEvent, type GraphSource } from "../../src/ops/map/feed.ts";
import { buildGraph, type MapGraph } from "../../src/ops/map/graph.ts";
import { MapListeners, hostName, isOwnHost, mapRequestHandler } from "../../src/ops/map/server.ts";
import { startMapService } from "../../src/ops/map/service.ts";
import { createLogger } from "../../src/util/log.ts";
import { waitFor } from "../lab/index.ts";
import { fakeKey } from "../helpers/map-fixture.ts";

const quiet = createLogger(false, () => undefined);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function graph(status: "alive" | "failed" = "alive", uptime = 1): MapGraph {
  return buildGraph({ rows: [{ name: "a", publicKey: fakeKey("a"), meshAddress: "200::a", status, ...(status === "alive" ? { uptimeSeconds: uptime } : {}) }], reports: [], now: Date.now() });
}

/** A stand-in for the KV: counts reads, fails when told, and lets the test fire watch events. */
class FakeSource implements GraphSource {
  reads = 0;
  resets = 0;
  watches = 0;
  stops = 0;
  next: MapGraph = graph();
  fail: Error | undefined;
  readMs = 5;
  changed: (() => void) | undefined;
  failed: ((e: unknown) => void) | undefined;

  async read(): Promise<MapGraph> {
    this.reads++;
    await sleep(this.readMs);
    if (this.fail) throw this.fail;
    return this.next;
  }

  async watch(changed: () => void, failed: (e: unknown) => void): Promise<() => void> {
    this.watches++;
    this.changed = changed;
    this.failed = failed;
    return () => {
      this.stops++;
      this.changed = undefined;
    };
  }

  reset(): void {
    this.resets++;
  }
}

function follow(feed: GraphFeed): { events: FeedEvent[]; stop: () => void } {
  const events: FeedEvent[] = [];
  const stop = feed.subscribe((e) => events.push(e));
  return { events, stop };
}

describe("the map's feed", () => {
  it("sends the graph at once, again when a watched change alters it, never for uptimes ticking on", async () => {
    const src = new FakeSource();
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 20, pollMs: 60_000 });
    const f = follow(feed);
    await waitFor("first graph", () => f.events.length === 1, { timeoutMs: 2000, intervalMs: 5 });
    await waitFor("watching", () => src.changed !== undefined, { timeoutMs: 2000, intervalMs: 5 });
    src.next = graph("alive", 99);
    src.changed?.();
    await sleep(100);
    assert.equal(f.events.length, 1, "an uptime is no change");
    src.next = graph("failed");
    src.changed?.();
    await waitFor("the failed member", () => f.events.length === 2, { timeoutMs: 2000, intervalMs: 5 });
    const last = f.events[1];
    assert.equal(last?.type === "graph" && last.graph.nodes[0]?.status, "failed");
    f.stop();
    feed.close();
  });

  it("reads at most once per interval however many changes come in", async () => {
    const src = new FakeSource();
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 100, pollMs: 60_000 });
    const f = follow(feed);
    await waitFor("watching", () => src.changed !== undefined, { timeoutMs: 2000, intervalMs: 5 });
    await sleep(150);
    const before = src.reads;
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      src.changed?.();
      await sleep(1);
    }
    await sleep(150);
    const elapsed = Date.now() - started;
    const reads = src.reads - before;
    assert.ok(reads >= 1, "the changes were read");
    assert.ok(reads <= Math.ceil(elapsed / 100) + 1, `${reads} reads in ${elapsed} ms`);
    f.stop();
    feed.close();
  });

  it("passes a KV that does not answer on as one problem, reconnects, and sends the graph when it is back", async () => {
    const src = new FakeSource();
    src.fail = new Error("etcd read of node records: no answer within 3000 ms");
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 10, pollMs: 60_000, retryMs: 30 });
    const f = follow(feed);
    await waitFor("a problem", () => f.events.length >= 1, { timeoutMs: 2000, intervalMs: 5 });
    await waitFor("retried", () => src.reads >= 3, { timeoutMs: 2000, intervalMs: 5 });
    assert.equal(f.events.filter((e) => e.type === "problem").length, 1, "said once");
    assert.match(f.events[0]?.type === "problem" ? f.events[0].message : "", /does not answer on this member \(etcd read of node records: no answer/);
    assert.ok(src.resets >= 1, "the connection is dropped for a new one");
    await assert.rejects(feed.current(), /no answer/);
    src.fail = undefined;
    await waitFor("the graph again", () => f.events.at(-1)?.type === "graph", { timeoutMs: 2000, intervalMs: 5 });
    f.stop();
    feed.close();
  });

  it("watches only while someone follows, closes the connection when idle, and watches again when the watch dies", async () => {
    const src = new FakeSource();
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 10, pollMs: 60_000, retryMs: 20, idleMs: 50 });
    assert.equal(src.watches, 0);
    const f = follow(feed);
    await waitFor("watching", () => src.watches === 1, { timeoutMs: 2000, intervalMs: 5 });
    src.failed?.(new Error("compacted"));
    await waitFor("watching again", () => src.watches === 2, { timeoutMs: 2000, intervalMs: 5 });
    const g = follow(feed);
    assert.equal(feed.followers, 2);
    assert.equal(src.watches, 2, "one watch for all followers");
    f.stop();
    g.stop();
    assert.ok(src.stops >= 2, "the watch stopped with the last follower");
    const resets = src.resets;
    await waitFor("the idle connection closed", () => src.resets > resets, { timeoutMs: 2000, intervalMs: 5 });
    feed.close();
  });

  it("watches again after the connection was dropped for a failed read (the watch died with it)", async () => {
    const src = new FakeSource();
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 10, pollMs: 60_000, retryMs: 20 });
    const f = follow(feed);
    await waitFor("watching", () => src.watches === 1, { timeoutMs: 2000, intervalMs: 5 });
    src.fail = new Error("gone");
    src.changed?.();
    await waitFor("the problem", () => f.events.at(-1)?.type === "problem", { timeoutMs: 2000, intervalMs: 5 });
    src.fail = undefined;
    await waitFor("a new watch", () => src.watches >= 2 && src.changed !== undefined, { timeoutMs: 2000, intervalMs: 5 });
    assert.ok(src.stops >= 1, "the old watch was let go");
    f.stop();
    feed.close();
  });

  it("closes the connection when only single answers were asked for, once idle", async () => {
    const src = new FakeSource();
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 0, idleMs: 30 });
    await feed.current();
    assert.equal(src.resets, 0);
    await waitFor("closed when idle", () => src.resets === 1, { timeoutMs: 2000, intervalMs: 5 });
    feed.close();
  });

  it("shares one read among simultaneous answers", async () => {
    const src = new FakeSource();
    src.readMs = 30;
    const feed = new GraphFeed(src, quiet, { minIntervalMs: 0 });
    const answers = await Promise.all([feed.current(), feed.current(), feed.current()]);
    assert.equal(src.reads, 1);
    assert.equal(answers[0], answers[2]);
    feed.close();
  });
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(port: number, path: string, o: { method?: string; host?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: o.method ?? "GET", agent: false, headers: { host: o.host ?? `127.0.0.1:${port}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the map's HTTP server", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-map-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>map</title>");
  writeFileSync(join(dir, "map.js"), "console.log(1)");
  writeFileSync(join(dir, "map.css"), "body{}");
  writeFileSync(join(tmpdir(), "secret.txt"), "no");
  let current: MapGraph = graph();
  let failing = false;
  const senders = new Set<(e: FeedEvent) => void>();
  const feed = {
    current: async () => {
      if (failing) throw new Error("no quorum");
      return current;
    },
    subscribe(send: (e: FeedEvent) => void) {
      senders.add(send);
      send({ type: "graph", graph: current });
      return () => void senders.delete(send);
    },
  };
  const server = createHttpServer(mapRequestHandler({ feed, staticDir: dir, meshAddress: () => "200:1:2::3", log: quiet, maxFollowers: 2, keepAliveMs: 50 }));
  const listening = new Promise<number>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, () => resolve((server.address() as AddressInfo).port)));
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("serves the page's files with a strict content policy, and nothing else", async () => {
    const port = await listening;
    const page = await get(port, "/?x=1");
    assert.equal(page.status, 200);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
    assert.equal(page.headers["x-frame-options"], "DENY");
    assert.equal(page.body, "<!doctype html><title>map</title>");
    assert.match(String((await get(port, "/map.js")).headers["content-type"]), /^text\/javascript/);
    for (const path of ["/../secret.txt", "/%2e%2e/secret.txt", "/map.js/../../secret.txt", "/package.json", "/api"]) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.doesNotMatch(r.body, /no$/);
    }
  });

  it("is read-only: anything but GET and HEAD is refused", async () => {
    const port = await listening;
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await get(port, "/api/graph", { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers["allow"], "GET, HEAD");
    }
    const head = await get(port, "/", { method: "HEAD" });
    assert.deepEqual([head.status, head.body], [200, ""]);
  });

  it("answers only requests naming this machine (loopback names or its mesh address, any port)", async () => {
    const port = await listening;
    assert.equal((await get(port, "/api/graph", { host: "evil.example" })).status, 421);
    assert.equal((await get(port, "/api/graph", { host: "127.0.0.1.nip.io:80" })).status, 421);
    assert.equal((await get(port, "/api/graph", { host: "localhost:9999" })).status, 200);
    assert.equal((await get(port, "/api/graph", { host: "[200:1:2::3]:4865" })).status, 200);
    assert.equal(hostName("[::1]:80"), "::1");
    assert.ok(!isOwnHost(undefined, "200::1"));
    assert.ok(isOwnHost("200:1:2::3", "200:1:2::3"));
  });

  it("answers /api/graph with the graph, and 503 with why when the KV does not answer", async () => {
    const port = await listening;
    const ok = await get(port, "/api/graph");
    assert.equal(ok.status, 200);
    assert.deepEqual((JSON.parse(ok.body) as MapGraph).nodes.map((n) => n.name), ["a"]);
    failing = true;
    const down = await get(port, "/api/graph");
    failing = false;
    assert.equal(down.status, 503);
    assert.match((JSON.parse(down.body) as { error: string }).error, /does not answer on this member \(no quorum\)/);
  });

  it("streams the graph as server-sent events while the page follows, with keep-alives, and lets go when it leaves", async () => {
    const port = await listening;
    const received: string[] = [];
    const req = request({ host: "127.0.0.1", port, path: "/api/events", headers: { host: `127.0.0.1:${port}` } });
    const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
      req.on("response", resolve);
      req.on("error", reject);
      req.end();
    });
    assert.match(String(res.headers["content-type"]), /^text\/event-stream/);
    res.setEncoding("utf8");
    res.on("data", (c: string) => received.push(c));
    await waitFor("the first graph", () => received.join("").includes("event: graph\ndata: {"), { timeoutMs: 2000, intervalMs: 5 });
    current = graph("failed");
    for (const s of senders) s({ type: "graph", graph: current });
    await waitFor("the update", () => /"status":"failed"/.test(received.join("")), { timeoutMs: 2000, intervalMs: 5 });
    await waitFor("a keep-alive", () => received.join("").includes(": keep-alive\n\n"), { timeoutMs: 2000, intervalMs: 5 });
    assert.equal(senders.size, 1);
    req.destroy();
    await waitFor("unsubscribed", () => senders.size === 0, { timeoutMs: 2000, intervalMs: 5 });
  });

  it("serves at most maxFollowers event streams at once", async () => {
    const port = await listening;
    const open = [0, 1].map(() => request({ host: "127.0.0.1", port, path: "/api/events", headers: { host: `127.0.0.1:${port}` } }));
    for (const r of open) {
      r.on("error", () => undefined);
      r.end();
    }
    await waitFor("two followers", () => senders.size === 2, { timeoutMs: 2000, intervalMs: 5 });
    const third = await get(port, "/api/events");
    assert.equal(third.status, 503);
    assert.match(third.body, /already serves the map to 2 pages/);
    for (const r of open) r.destroy();
    await waitFor("none left", () => senders.size === 0, { timeoutMs: 2000, intervalMs: 5 });
  });
});

describe("the map's listeners", () => {
  it("say once that a port is taken, take it when it is free, and move with the port", async () => {
    const blocker: Server = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen({ host: "127.0.0.1", port: 0 }, () => resolve((blocker.address() as AddressInfo).port)));
    const warnings: string[] = [];
    const log = { ...quiet, warn: (m: string) => void warnings.push(m), info: () => undefined };
    const l = new MapListeners((_req, res) => res.end("x"), log);
    await l.ensure(["127.0.0.1"], port);
    await l.ensure(["127.0.0.1"], port);
    assert.deepEqual(l.bound, []);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0] ?? "", new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(the port is taken by another program\\).*config set meshnet/map/port PORT`));
    await new Promise((r) => blocker.close(r));
    await l.ensure(["127.0.0.1"], port);
    assert.deepEqual(l.bound, [`127.0.0.1:${port}`]);
    // An address this machine does not have (a mesh address before the mesh is up) is retried too.
    await l.ensure(["127.0.0.1", "2001:db8::dead"], port);
    assert.deepEqual(l.bound, [`127.0.0.1:${port}`]);
    assert.match(warnings.at(-1) ?? "", /cannot listen on \[2001:db8::dead\]/);
    l.stop();
    assert.deepEqual(l.bound, []);
  });
});

describe("the map beside the agent", () => {
  it("listens on 127.0.0.1 at the port the agent runs with, follows it when it changes, and answers 503 while no KV answers", async () => {
    const free = async () => {
      const s = createServer();
      const port = await new Promise<number>((r) => s.listen({ host: "127.0.0.1", port: 0 }, () => r((s.address() as AddressInfo).port)));
      await new Promise((r) => s.close(r));
      return port;
    };
    const root = mkdtempSync(join(tmpdir(), "rf-map-agent-"));
    const install = mkdtempSync(join(tmpdir(), "rf-map-install-"));
    mkdirSync(join(install, "dist", "map"), { recursive: true });
    writeFileSync(join(install, "dist", "map", "index.html"), "<!doctype html><title>map</title>");
    const paths = cachePaths(root);
    const node = nodePaths(paths.node);
    mkdirSync(node.runDir, { recursive: true });
    const [first, second] = [await free(), await free()];
    writeFileSync(node.lastGoodSettings, JSON.stringify({ ...DEFAULT_SETTINGS, mapPort: first }));
    const companion = startMapService({ cache: paths, node, installDir: install, log: quiet, local: new LocalConfig(paths, install, quiet, false) }, { tickMs: 50 });
    try {
      await waitFor("the page on the first port", async () => (await get(first, "/").catch(() => undefined))?.status === 200, { timeoutMs: 5000, intervalMs: 50 });
      // A member without its certificates (or quorum): the page is there, the data says why not.
      const graphAnswer = await get(first, "/api/graph");
      assert.equal(graphAnswer.status, 503);
      assert.match(graphAnswer.body, /does not answer on this member/);
      writeFileSync(node.lastGoodSettings, JSON.stringify({ ...DEFAULT_SETTINGS, mapPort: second }));
      await waitFor("the page on the second port", async () => (await get(second, "/").catch(() => undefined))?.status === 200, { timeoutMs: 5000, intervalMs: 50 });
      await assert.rejects(get(first, "/"), /ECONNREFUSED/);
    } finally {
      await companion.stop();
    }
    await assert.rejects(get(second, "/"), /ECONNREFUSED/);
  });
});
