import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { YggdrasilAdmin, YggdrasilAdminError, changePeers, waitForAdmin } from "../../src/mesh/yggdrasil/admin.ts";

const KA = "7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c";
const KB = "48b9448f0f836154fe648304acabc12234240d674c2dc1cf2281920b96549e56";

// Answers as 0.4.7 and 0.5.12 wrote them (pretty-printed, "request" echo null on 0.4).
const ANSWERS: Record<"0.4" | "0.5", Record<string, unknown>> = {
  "0.4": {
    getself: { build_name: "unknown", build_version: "unknown", key: KA, address: "201:9e3:2644:fad9:e9d9:822a:fb67:ba87", coords: [], subnet: "301:9e3:2644:fad9::/64" },
    getpeers: {
      peers: [
        { address: "201:dd1a:edc3:c1f2:7aac:66d:f3ed:4d50", key: KB, port: 1, priority: 0, coords: [], remote: "tcp://198.18.0.2:60284", bytes_recvd: 692, bytes_sent: 1239, uptime: 3.220795206 },
      ],
    },
  },
  "0.5": {
    getself: { build_name: "yggdrasil", build_version: "0.5.12", key: KA, address: "201:9e3:2644:fad9:e9d9:822a:fb67:ba87", routing_entries: 1, subnet: "301:9e3:2644:fad9::/64" },
    getpeers: {
      peers: [
        { remote: "tcp://198.18.0.9:4863", up: false, inbound: false, key: "", port: 0, priority: 0, cost: 0, last_error_time: 3648911385, last_error: "dial tcp 198.18.0.9:4863: connect: no route to host" },
        // What 0.5.12 wrote for a peering up for 3.6 s after one refused dial 5.6 s ago.
        {
          remote: "tcp://198.18.0.2:35030",
          up: true,
          inbound: true,
          address: "201:dd1a:edc3:c1f2:7aac:66d:f3ed:4d50",
          key: KB,
          port: 1,
          priority: 0,
          cost: 1,
          bytes_recvd: 1594,
          bytes_sent: 1514,
          rate_recvd: 696,
          rate_sent: 868,
          uptime: 3.648763076,
          latency: 470000,
          last_error_time: 5649595008,
          last_error: "dial tcp 198.18.0.2:4863: connect: connection refused",
        },
      ],
    },
    gettree: {
      tree: [
        { address: "201:dd1a:edc3:c1f2:7aac:66d:f3ed:4d50", key: KB, parent: KB, sequence: 1 },
        { address: "201:9e3:2644:fad9:e9d9:822a:fb67:ba87", key: KA, parent: KB, sequence: 2 },
        { address: "200::1", key: "not a key", parent: KB, sequence: 2 },
      ],
    },
  },
};

interface Fake {
  path: string;
  requests: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A stand-in admin socket. `reply` returns the whole answer object, or undefined to stay silent. */
function fakeAdmin(path: string, reply: (req: Record<string, unknown>) => unknown): Promise<Fake> {
  const requests: Record<string, unknown>[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    let buf = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      buf += d;
      let req: Record<string, unknown>;
      try {
        req = JSON.parse(buf) as Record<string, unknown>;
      } catch {
        return;
      }
      requests.push(req);
      const answer = reply(req);
      if (answer === undefined) return;
      // Like yggdrasil: indented, in two writes, then close.
      const text = `${JSON.stringify(answer, null, 2)}\n`;
      s.write(text.slice(0, 10));
      setTimeout(() => s.end(text.slice(10)), 5);
    });
  });
  return new Promise((resolvePromise) => {
    server.listen(path, () =>
      resolvePromise({
        path,
        requests,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

function yggdrasilLike(major: "0.4" | "0.5", configured: Set<string>) {
  return (req: Record<string, unknown>) => {
    const name = String(req["request"]).toLowerCase();
    const uri = String((req["arguments"] as Record<string, unknown> | undefined)?.["uri"] ?? "");
    const echo = major === "0.4" ? null : req;
    const fail = (error: string) => ({ status: "error", error, request: echo, response: null });
    if (name === "addpeer") {
      if (configured.has(uri)) return fail(major === "0.4" ? "peer already configured" : "peer is already configured");
      configured.add(uri);
      return { status: "success", request: echo, response: {} };
    }
    if (name === "removepeer") {
      if (!configured.delete(uri)) return fail(major === "0.4" ? "peer not configured" : "peer is not configured");
      return { status: "success", request: echo, response: {} };
    }
    const response = ANSWERS[major][name];
    if (response === undefined) return fail(`Unknown action '${name}', try 'list' for help`);
    return { status: "success", request: echo, response };
  };
}

describe("yggdrasil admin client", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-ygg-admin-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const URI = `tcp://198.18.0.1:4863?key=${KA}`;

  it("normalises 0.4 answers (only live peers, direction unknown)", async () => {
    const fake = await fakeAdmin(join(dir, "a04.sock"), yggdrasilLike("0.4", new Set()));
    try {
      const admin = new YggdrasilAdmin(fake.path, "0.4");
      assert.equal(admin.supportsLivePeerChanges, false);
      assert.deepEqual(await admin.getSelf(), { publicKey: KA, address: "201:9e3:2644:fad9:e9d9:822a:fb67:ba87", subnet: "301:9e3:2644:fad9::/64", buildVersion: "unknown" });
      assert.deepEqual(await admin.getPeers(), [
        { publicKey: KB, address: "201:dd1a:edc3:c1f2:7aac:66d:f3ed:4d50", remote: "tcp://198.18.0.2:60284", up: true, inbound: null, port: 1, rxBytes: 692, txBytes: 1239, uptimeSeconds: 3.220795206 },
      ]);
      await assert.rejects(admin.getTree(), (e: unknown) => e instanceof YggdrasilAdminError && e.kind === "unsupported");
      assert.deepEqual(fake.requests[0], { request: "getSelf", arguments: {}, keepalive: false });
    } finally {
      await fake.close();
    }
  });

  it("normalises 0.5 answers (configured peers that are down included)", async () => {
    const fake = await fakeAdmin(join(dir, "a05.sock"), yggdrasilLike("0.5", new Set()));
    try {
      const admin = new YggdrasilAdmin(fake.path, "0.5");
      assert.equal(admin.supportsLivePeerChanges, true);
      assert.equal((await admin.getSelf()).buildVersion, "0.5.12");
      assert.deepEqual(await admin.getPeers(), [
        { publicKey: "", address: "", remote: "tcp://198.18.0.9:4863", up: false, inbound: false, lastError: "dial tcp 198.18.0.9:4863: connect: no route to host", lastErrorAgeSeconds: 3.648911385 },
        {
          publicKey: KB,
          address: "201:dd1a:edc3:c1f2:7aac:66d:f3ed:4d50",
          remote: "tcp://198.18.0.2:35030",
          up: true,
          inbound: true,
          lastError: "dial tcp 198.18.0.2:4863: connect: connection refused",
          lastErrorAgeSeconds: 5.649595008,
          port: 1,
          rxBytes: 1594,
          txBytes: 1514,
          rxRate: 696,
          txRate: 868,
          uptimeSeconds: 3.648763076,
          // 470000 ns
          latencyMs: 0.47,
        },
      ]);
      // The root is its own parent; an entry without two keys is left out.
      assert.deepEqual(await admin.getTree(), [
        { publicKey: KB, parent: KB },
        { publicKey: KA, parent: KB },
      ]);
    } finally {
      await fake.close();
    }
  });

  it("adds and removes peers idempotently on 0.5", async () => {
    const configured = new Set<string>();
    const fake = await fakeAdmin(join(dir, "p05.sock"), yggdrasilLike("0.5", configured));
    try {
      const admin = new YggdrasilAdmin(fake.path, "0.5");
      assert.equal(await admin.addPeer(URI), true);
      assert.equal(await admin.addPeer(URI), false);
      assert.deepEqual([...configured], [URI]);
      assert.deepEqual(fake.requests[0], { request: "addPeer", arguments: { uri: URI, interface: "" }, keepalive: false });
      assert.equal(await admin.removePeer(URI), true);
      assert.equal(await admin.removePeer(URI), false);
      assert.equal(configured.size, 0);
      assert.deepEqual(await changePeers(admin, { add: [URI], remove: [URI] }), { restartRequired: false });
      await assert.rejects(admin.addPeer("bogus"), /not a peer URI/);
    } finally {
      await fake.close();
    }
  });

  it("on 0.4 adds live but asks for a restart to remove", async () => {
    const configured = new Set<string>();
    const fake = await fakeAdmin(join(dir, "p04.sock"), yggdrasilLike("0.4", configured));
    try {
      const admin = new YggdrasilAdmin(fake.path, "0.4");
      assert.equal(await admin.addPeer(URI), true);
      assert.equal(await admin.addPeer(URI), false);
      assert.deepEqual([...configured], [URI]);
      await assert.rejects(admin.removePeer(URI), (e: unknown) => e instanceof YggdrasilAdminError && e.kind === "unsupported" && /restart yggdrasil/.test(e.message));
      assert.equal(fake.requests.filter((r) => r["request"] === "removePeer").length, 0, "0.4 is not asked: its 'success' would be a lie");
      const other = `tcp://198.18.0.3:4863?key=${KB}`;
      assert.deepEqual(await changePeers(admin, { add: [other], remove: [URI] }), { restartRequired: true });
      assert.ok(configured.has(other));
      assert.deepEqual(await changePeers(admin, { add: [other] }), { restartRequired: false });
    } finally {
      await fake.close();
    }
  });

  it("reports refused requests with yggdrasil's reason", async () => {
    const fake = await fakeAdmin(join(dir, "err.sock"), yggdrasilLike("0.5", new Set()));
    try {
      await assert.rejects(new YggdrasilAdmin(fake.path, "0.5").request("nope"), (e: unknown) => {
        assert.ok(e instanceof YggdrasilAdminError);
        assert.equal(e.kind, "refused-request");
        assert.match(e.message, /yggdrasil refused nope \(admin socket .*err\.sock\): Unknown action 'nope'/);
        return true;
      });
    } finally {
      await fake.close();
    }
  });

  it("tells refusals apart by yggdrasil's reply, not by a message that also names the socket path", async () => {
    // A cache dir may be named anything; a refusal for another reason must still surface.
    const odd = join(dir, "peer already configured, not configured");
    mkdirSync(odd);
    const fake = await fakeAdmin(join(odd, "y.sock"), (req) => ({ status: "error", error: "interface tun0 is busy", request: req, response: null }));
    try {
      const admin = new YggdrasilAdmin(fake.path, "0.5");
      for (const call of [() => admin.addPeer(URI), () => admin.removePeer(URI)]) {
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof YggdrasilAdminError);
          assert.equal(e.kind, "refused-request");
          assert.equal(e.reply, "interface tun0 is busy");
          return true;
        });
      }
    } finally {
      await fake.close();
    }
  });

  it("says yggdrasil is not running when there is no socket", async () => {
    const path = join(dir, "missing.sock");
    await assert.rejects(new YggdrasilAdmin(path, "0.5").getSelf(), (e: unknown) => {
      assert.ok(e instanceof YggdrasilAdminError);
      assert.equal(e.kind, "not-running");
      assert.equal(e.message, `yggdrasil is not running (no admin socket at ${path}).`);
      return true;
    });
  });

  it("times out on a socket that never answers", async () => {
    const fake = await fakeAdmin(join(dir, "silent.sock"), () => undefined);
    try {
      const started = Date.now();
      await assert.rejects(new YggdrasilAdmin(fake.path, "0.5", { timeoutMs: 300 }).getSelf(), (e: unknown) => e instanceof YggdrasilAdminError && e.kind === "timeout" && /within 300 ms/.test(e.message));
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await fake.close();
    }
  });

  it("rejects answers that are not yggdrasil's", async () => {
    const fake = await fakeAdmin(join(dir, "junk.sock"), () => ["not", "an", "object"]);
    try {
      await assert.rejects(new YggdrasilAdmin(fake.path, "0.5").getSelf(), (e: unknown) => e instanceof YggdrasilAdminError && e.kind === "protocol");
    } finally {
      await fake.close();
    }
    const half = await fakeAdmin(join(dir, "half.sock"), () => ({ status: "success" }));
    try {
      await assert.rejects(new YggdrasilAdmin(half.path, "0.5").getSelf(), /no public key/);
      await assert.rejects(new YggdrasilAdmin(half.path, "0.5").getPeers(), /no peer list/);
    } finally {
      await half.close();
    }
    // Go writes an empty peer list as null.
    const none = await fakeAdmin(join(dir, "none.sock"), () => ({ status: "success", request: null, response: { peers: null } }));
    try {
      assert.deepEqual(await new YggdrasilAdmin(none.path, "0.4").getPeers(), []);
    } finally {
      await none.close();
    }
  });

  it("waits for the socket to appear, within its time limit", async () => {
    const path = join(dir, "late.sock");
    let fake: Fake | undefined;
    const timer = setTimeout(() => {
      void fakeAdmin(path, yggdrasilLike("0.4", new Set())).then((f) => (fake = f));
    }, 400);
    try {
      const self = await waitForAdmin(path, "0.4", 5_000);
      assert.equal(self.publicKey, KA);
    } finally {
      clearTimeout(timer);
      await fake?.close();
    }
    const started = Date.now();
    await assert.rejects(waitForAdmin(join(dir, "never.sock"), "0.5", 700), (e: unknown) => {
      assert.ok(e instanceof YggdrasilAdminError);
      assert.match(e.message, /did not answer on its admin socket .*never\.sock within 700 ms \(last error: yggdrasil is not running/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 600 && took < 2_000, `took ${took} ms`);
  });
});
