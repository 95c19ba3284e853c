import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { noop } from "cockatiel";
import { Etcd3 } from "etcd3";
import { cachePaths } from "../../src/config/paths.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { nodeKey } from "../../src/consensus/registry.ts";
import { DEFAULT_SETTINGS, type ClusterSettings } from "../../src/consensus/settings.ts";
import { initialState, type NodeState } from "../../src/node/agent-state.ts";
import type { ConfigView } from "../../src/node/config-view.ts";
import { KvSession } from "../../src/node/step-kv-session.ts";
import type { Supervisor } from "../../src/node/supervisor.ts";
import { CuttingRelay, haveEtcd, startEtcd, type SingleEtcd } from "../helpers/etcd-single.ts";

/*
 * A learner's KV client talks to the voters; once promoted it talks to its own etcd, which may
 * be slow to answer its first write. CI saw a just-promoted replacement shown failed: its record
 * lapsed at that switch. The record written through the old client must live until the new
 * client has written it again.
 */
describe("the KV session moving to a new target keeps the node record alive", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  let etcd: SingleEtcd;
  let voters: CuttingRelay;
  let own: CuttingRelay;
  let reader: Etcd3;
  let dir: string;
  const publicKey = "ab".repeat(32);

  before(async () => {
    etcd = await startEtcd();
    voters = await CuttingRelay.start(etcd.url.replace("http://", ""));
    own = await CuttingRelay.start(etcd.url.replace("http://", ""));
    reader = new Etcd3({ hosts: etcd.url });
    dir = mkdtempSync(join(tmpdir(), "rf-kv-session-"));
  });

  after(async () => {
    reader?.close();
    await voters?.close();
    await own?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("through a learner→voter switch whose first write outlasts the lease TTL", async () => {
    const cache = cachePaths(dir);
    const opened: string[] = [];
    const noLog = { info: () => undefined, debug: () => undefined, warn: () => undefined, error: () => undefined };
    const session = new KvSession({
      node: nodePaths(cache.node),
      cache,
      supervisor: { isRunning: () => true } as unknown as Supervisor,
      log: noLog as never,
      local: { snapshot: () => ({ mapping: {} }) } as never,
      config: { unfollow: () => undefined, invalidate: () => undefined, scheduleMirror: () => undefined } as unknown as ConfigView,
      version: "test",
      startedAt: Date.now(),
      onChange: () => undefined,
      poke: () => undefined,
      // The agent's own etcd (127.0.0.1) is `own`; the voters' endpoints are `voters`.
      open: (endpoints) => {
        const local = endpoints[0]?.includes("127.0.0.1") === true;
        opened.push(local ? "own" : "voters");
        return new Etcd3({ hosts: (local ? own : voters).url, faultHandling: { host: () => noop, global: noop } });
      },
    });
    const settings: ClusterSettings = { ...DEFAULT_SETTINGS, nodeTtlSeconds: 2 };
    const s: NodeState = {
      ...initialState(),
      identity: { privateKey: "00".repeat(64), publicKey, address: "200::1" },
      info: { binary: "yggdrasil", major: "0.5", version: "0.5.12" },
      role: "learner",
      voterEndpoints: ["https://[200::2]:2379"],
    };
    const record = async () => (await reader.get(nodeKey(publicKey)).exec()).kvs[0];
    try {
      await session.connect(s, settings);
      await session.register(s, settings);
      const first = await record();
      assert.ok(first, "the learner wrote its record through the voters");

      s.role = "voter";
      own.hold();
      await session.connect(s, settings); // its member-list read times out (2 s): the role stays
      await assert.rejects(session.register(s, settings), /deadline|timed out|exceeded/i);
      assert.deepEqual(opened, ["voters", "own"]);
      // ≥ 5 s since the switch, 2.5 TTLs: the old lease would have expired had it been dropped.
      const during = await record();
      assert.ok(during, "the record lapsed while the new client's first write was under way");
      assert.equal(during.lease, first.lease, "still on the learner's lease");

      own.release();
      await session.register(s, settings);
      const moved = await record();
      assert.ok(moved);
      assert.notEqual(moved.lease, first.lease, "written again on the new client's lease");
      // The old client is closed now: its lease runs out and must not take the record with it.
      await new Promise((r) => setTimeout(r, 2 * settings.nodeTtlSeconds * 1000 + 500));
      const later = await record();
      assert.ok(later, "the record went with the old lease");
      assert.equal(later.lease, moved.lease);
      const oldLease = await reader.leaseClient.leaseTimeToLive({ ID: first.lease });
      assert.equal(Number(oldLease.TTL), -1, "the learner's lease was kept alive after the handover");
    } finally {
      own.release();
      await session.leave();
      await session.stop();
    }
    assert.equal(await record(), undefined, "a graceful leave drops the record");
  });
});
