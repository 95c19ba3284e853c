import { strict as assert } from "node:assert";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  YggdrasilAdmin,
  addressForKey,
  changePeers,
  loadOrCreateIdentity,
  peerUri,
  renderConfig,
  startYggdrasil,
  stopYggdrasil,
  subnetForKey,
  waitForAdmin,
  writeConfigFile,
  type Identity,
  type Major,
  type PeerInfo,
  type PeerSpec,
  type YggdrasilInfo,
} from "../../src/mesh/yggdrasil/index.ts";
import { createLab, findYggdrasilBinaries, inNetns, netnsUsable, type Binaries, type NetnsLab } from "../helpers/netns-pair.ts";

/*
 * Real yggdrasil processes in namespaces this test creates: A is the hub; B (a member) dials A
 * over link a-b; F has a key that is not in A's AllowedPublicKeys and dials A over link a-f.
 */

const PORT = 4863;
// Every wait below is bounded; these cap a test as a whole (a starved machine makes each
// bounded step slow) so a run fails instead of dragging on.
const TEST_TIMEOUT_MS = 180_000;
const SETUP_TIMEOUT_MS = 120_000;

interface Node {
  label: string;
  ns: string;
  dir: string;
  socket: string;
  configFile: string;
  logFile: string;
  identity: Identity;
  child?: ChildProcess;
}

/** Polls `probe` until it returns something truthy: at most `tries` times, `intervalMs` apart. */
async function until<T>(what: string, tries: number, intervalMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`gave up waiting for ${what} after ${tries} tries${last ? ` (last error: ${String(last)})` : ""}`);
}

function upPeer(peers: PeerInfo[], key: string): PeerInfo | undefined {
  return peers.find((p) => p.publicKey === key && p.up);
}

async function ping(from: Node, address: string): Promise<boolean> {
  const r = await inNetns(from.ns, ["ping", "-6", "-c1", "-W1", address], 5_000);
  return r.exitCode === 0;
}

describe("yggdrasil mesh between network namespaces", () => {
  let bins: Binaries;
  let noNetns: string | undefined;
  before(async () => {
    noNetns = await netnsUsable();
    bins = await findYggdrasilBinaries();
  });

  for (const major of ["0.4", "0.5"] as Major[]) {
    describe(`yggdrasil ${major}`, () => {
      let skip: string | undefined;
      let info: YggdrasilInfo;
      let lab: NetnsLab | undefined;
      const root = mkdtempSync(join(tmpdir(), `rf-ygg-e2e-${major}-`));
      const nodes: Record<string, Node> = {};
      let closed = false;
      const logs = () => Object.values(nodes).map((n) => `--- ${n.label} (${n.logFile})\n${readLog(n.logFile)}`).join("\n");

      function config(n: Node, peers: PeerSpec[], allowed: string[], password?: string): string {
        return renderConfig({
          ...(password === undefined ? {} : { password }),
          major,
          privateKey: n.identity.privateKey,
          publicKey: n.identity.publicKey,
          listenPort: PORT,
          peers,
          allowedPublicKeys: allowed,
          adminSocket: n.socket,
          ifName: "ygg0",
        });
      }

      async function start(n: Node, text: string): Promise<void> {
        await writeConfigFile(n.configFile, text);
        // A test that timed out keeps running; it must not start processes after cleanup.
        if (closed) throw new Error("the lab is already torn down");
        n.child = startYggdrasil({ binary: info.binary, configFile: n.configFile, logFile: n.logFile, prefix: ["ip", "netns", "exec", n.ns] });
        await waitForAdmin(n.socket, major, 15_000);
      }

      async function stop(n: Node): Promise<void> {
        if (n.child) await stopYggdrasil(n.child, 5_000);
        n.child = undefined;
      }

      const admin = (n: Node) => new YggdrasilAdmin(n.socket, major);
      const aFor = (from: string): PeerSpec => ({ host: lab!.addr("a", from), port: PORT, publicKey: nodes["a"]!.identity.publicKey });
      const configB = (peers = [aFor("b")]) => config(nodes["b"]!, peers, [nodes["a"]!.identity.publicKey]);

      before(async () => {
        const b = bins.get(major);
        if ("skip" in b || noNetns) {
          skip = "skip" in b ? b.skip : noNetns;
          return;
        }
        info = b.info;
        lab = await createLab(["a", "b", "f"], [
          ["a", "b"],
          ["a", "f"],
        ]);
        for (const label of ["a", "b", "f"]) {
          const dir = join(root, label);
          nodes[label] = {
            label,
            ns: lab.ns[label]!,
            dir,
            socket: join(dir, "ygg.sock"),
            configFile: join(dir, "yggdrasil.conf"),
            logFile: join(dir, "yggdrasil.log"),
            identity: await loadOrCreateIdentity(join(dir, "identity"), info),
          };
        }
        const [a, bNode, f] = [nodes["a"]!, nodes["b"]!, nodes["f"]!];
        await start(a, config(a, [], [bNode.identity.publicKey]));
        await start(bNode, configB());
        // F believes it is welcome (allows A, dials A), but A does not list F's key.
        await start(f, config(f, [aFor("f")], [a.identity.publicKey]));
      }, { timeout: SETUP_TIMEOUT_MS });

      after(async () => {
        closed = true;
        for (const n of Object.values(nodes)) await stop(n).catch(() => undefined);
        await lab?.destroy();
        rmSync(root, { recursive: true, force: true });
      }, { timeout: SETUP_TIMEOUT_MS });

      it("reports the identity we derived, over the admin socket", { timeout: TEST_TIMEOUT_MS }, async (t) => {
        if (skip) return t.skip(skip);
        for (const n of Object.values(nodes)) {
          const self = await admin(n).getSelf();
          assert.equal(self.publicKey, n.identity.publicKey);
          assert.equal(self.address, n.identity.address);
          assert.equal(self.address, addressForKey(n.identity.publicKey));
          assert.equal(self.subnet, subnetForKey(n.identity.publicKey));
          if (major === "0.5") assert.match(self.buildVersion, /^0\.5\./);
        }
      });

      it("B peers with A by pinned key and A pings B's mesh address", { timeout: TEST_TIMEOUT_MS }, async (t) => {
        if (skip) return t.skip(skip);
        const [a, b] = [nodes["a"]!, nodes["b"]!];
        const onA = await until("A to list B as an up peer", 40, 300, async () => upPeer(await admin(a).getPeers(), b.identity.publicKey)).catch((e: Error) => {
          throw new Error(`${e.message}\n${logs()}`);
        });
        assert.equal(onA.address, b.identity.address);
        assert.equal(onA.inbound, major === "0.5" ? true : null);
        const onB = upPeer(await admin(b).getPeers(), a.identity.publicKey);
        assert.ok(onB, "B lists A as up");
        assert.equal(onB.remote, `tcp://${lab!.addr("a", "b")}:${PORT}`);
        assert.equal(onB.inbound, major === "0.5" ? false : null);
        await until("A to ping B over the mesh", 30, 300, () => ping(a, b.identity.address));
      });

      it("a key outside AllowedPublicKeys cannot peer with A nor reach it", { timeout: TEST_TIMEOUT_MS }, async (t) => {
        if (skip) return t.skip(skip);
        const [a, b, f] = [nodes["a"]!, nodes["b"]!, nodes["f"]!];
        // F has been dialling A since before B came up; give it a few more rounds.
        for (let i = 0; i < 8; i++) {
          const peers = await admin(a).getPeers();
          assert.equal(
            peers.find((p) => p.publicKey === f.identity.publicKey),
            undefined,
            `A must not list F: ${JSON.stringify(peers)}`,
          );
          assert.equal(upPeer(await admin(f).getPeers(), a.identity.publicKey), undefined, "F must not have A as a peer");
          await sleep(300);
        }
        // ...and it is A's allow list that stops F, not a broken link: F's dials reach A.
        if (major === "0.4") {
          await until("A to log that it turned F away", 20, 300, async () => readLog(a.logFile).includes(`"${f.identity.publicKey}" is not in AllowedPublicKeys`));
        } else {
          await until("F to see its dials to A refused", 20, 300, async () => {
            const toA = (await admin(f).getPeers()).find((p) => p.remote === `tcp://${lab!.addr("a", "f")}:${PORT}`);
            return toA && !toA.up && toA.lastError !== undefined;
          });
        }
        assert.equal(await ping(f, a.identity.address), false, "F reaches A's mesh address");
        assert.equal(await ping(a, f.identity.address), false, "A reaches F's mesh address");
        assert.equal(await ping(f, b.identity.address), false, "F reaches B's mesh address");
      });

      it(`changes peers through the admin socket (${major === "0.5" ? "live" : "add live, remove by restart"})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
        if (skip) return t.skip(skip);
        const [a, b] = [nodes["a"]!, nodes["b"]!];
        const uriA = peerUri(aFor("b"));
        const adminB = admin(b);
        assert.equal(adminB.supportsLivePeerChanges, major === "0.5");

        const removed = await changePeers(adminB, { remove: [uriA] });
        assert.equal(removed.restartRequired, major === "0.4");
        if (removed.restartRequired) {
          await stop(b);
          await start(b, configB([]));
        }
        await until("A to lose B", 40, 300, async () => !upPeer(await admin(a).getPeers(), b.identity.publicKey));
        // Removed stays removed: B does not dial A again.
        for (let i = 0; i < 4; i++) {
          assert.equal(upPeer(await adminB.getPeers(), a.identity.publicKey), undefined, "B lists A after removing it");
          assert.equal(upPeer(await admin(a).getPeers(), b.identity.publicKey), undefined, "A lists B after B removed it");
          await sleep(300);
        }

        const added = await changePeers(adminB, { add: [uriA] });
        assert.equal(added.restartRequired, false);
        await until("A to see B again", 40, 300, async () => upPeer(await admin(a).getPeers(), b.identity.publicKey));
        // yggdrasil's own "already configured" / "not configured" answers are recognised.
        assert.equal(await adminB.addPeer(uriA), false);
        if (major === "0.5") assert.equal(await adminB.removePeer(peerUri({ ...aFor("b"), port: PORT + 1 })), false);
        await until("A to ping B again", 30, 300, () => ping(a, b.identity.address));
      });

      it("B keeps its identity and address across a restart", { timeout: TEST_TIMEOUT_MS }, async (t) => {
        if (skip) return t.skip(skip);
        const [a, b] = [nodes["a"]!, nodes["b"]!];
        const first = await admin(b).getSelf();
        await stop(b);
        b.identity = await loadOrCreateIdentity(join(b.dir, "identity"), info);
        await start(b, configB());
        const again = await admin(b).getSelf();
        assert.equal(again.publicKey, first.publicKey);
        assert.equal(again.address, first.address);
        await until("A to see the restarted B", 40, 300, async () => upPeer(await admin(a).getPeers(), b.identity.publicKey));
        await until("A to ping the restarted B", 30, 300, () => ping(a, again.address));
      });

      it("with a mesh password, B peers only while it has A's (an allowed key alone is not enough)", { timeout: TEST_TIMEOUT_MS }, async (t) => {
        if (skip) return t.skip(skip);
        if (major === "0.4") return t.skip("Yggdrasil 0.4 has no link password");
        const [a, b] = [nodes["a"]!, nodes["b"]!];
        const right = "cluster-password-0123456789";
        const wrong = "another-password-0123456789";
        await stop(a);
        await start(a, config(a, [], [b.identity.publicKey], right));
        await stop(b);
        await start(b, config(b, [aFor("b")], [a.identity.publicKey], wrong));
        await until("B to see its dials to A refused", 30, 300, async () => {
          const toA = (await admin(b).getPeers()).find((p) => p.remote === `tcp://${lab!.addr("a", "b")}:${PORT}`);
          return toA !== undefined && !toA.up && toA.lastError !== undefined;
        });
        for (let i = 0; i < 4; i++) {
          assert.equal(upPeer(await admin(a).getPeers(), b.identity.publicKey), undefined, "A lists B although B has the wrong password");
          await sleep(300);
        }
        assert.equal(await ping(a, b.identity.address), false, "A reaches B without B knowing the password");
        await stop(b);
        await start(b, config(b, [aFor("b")], [a.identity.publicKey], right));
        await until("A to see B with the password", 40, 300, async () => upPeer(await admin(a).getPeers(), b.identity.publicKey));
        await until("A to ping B", 30, 300, () => ping(a, b.identity.address));
      });
    });
  }
});

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "(no log)";
  }
}
