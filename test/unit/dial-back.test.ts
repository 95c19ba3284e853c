import { strict as assert } from "node:assert";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import { DIAL_BACK_KEEP_MS, DIAL_BACK_MAX_AGE_MS, DialBackListener, encodeDialBack, staleDialBacks, verifyDialBack } from "../../src/node/dial-back.ts";
import type { PeerInfo } from "../../src/mesh/yggdrasil/admin.ts";
import { createLogger } from "../../src/util/log.ts";
import { freePort } from "../helpers/etcd-single.ts";

// A real key pair (seed + public half), and another member's public key.
const PRIV = "2d3306c9ea6fcf73179d378137998908e5c48ec848131b61516555318a9903ee7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c";
const ME = { privateKey: PRIV, publicKey: PRIV.slice(64) };
const OTHER = "116f4e064f7e9fbffaeca0c334c2cbb6bf3e2f2f83446f2520d2d84dfeb3bd55";

describe("dial-back requests (a moved member asks its neighbours to dial it)", () => {
  it("a request signed with the member's key is taken; one altered, signed by another key, or out of its time window is not", () => {
    const at = 1_700_000_000_000;
    const d = encodeDialBack(ME, 4863, at);
    assert.deepEqual(verifyDialBack(d, at + 1000), { publicKey: ME.publicKey, port: 4863, at });
    const doc = JSON.parse(d.toString()) as Record<string, unknown>;
    const altered = (change: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...doc, ...change }));
    assert.equal(verifyDialBack(altered({ port: 4864 }), at), undefined, "another port than the one signed");
    assert.equal(verifyDialBack(altered({ key: OTHER }), at), undefined, "claimed by another key");
    assert.equal(verifyDialBack(altered({ at: at + 1 }), at), undefined, "another time than the one signed");
    assert.equal(verifyDialBack(d, at + DIAL_BACK_MAX_AGE_MS + 1), undefined, "too old");
    assert.equal(verifyDialBack(d, at - DIAL_BACK_MAX_AGE_MS - 1), undefined, "too far ahead");
    for (const junk of ["", "{", "[]", "null", JSON.stringify({ v: 2 }), "x".repeat(600)]) assert.equal(verifyDialBack(Buffer.from(junk), at), undefined, junk.slice(0, 20));
  });

  it("the listener dials back a wanted neighbour at the datagram's source, once per request, never an unwanted key", async () => {
    const port = await freePort();
    const dialled: string[] = [];
    let wanted = true;
    const l = new DialBackListener({ wants: () => wanted, dial: async (key, host, p) => void dialled.push(`${key.slice(0, 8)}@${host}:${p}`) }, createLogger(false));
    await l.ensure(port);
    const sender = createSocket("udp4");
    const send = (b: Buffer) => new Promise<void>((r) => sender.send(b, port, "127.0.0.1", () => r()));
    const settle = () => new Promise((r) => setTimeout(r, 150));
    try {
      const first = encodeDialBack(ME, 4870, Date.now());
      await send(first);
      await settle();
      assert.deepEqual(dialled, [`${ME.publicKey.slice(0, 8)}@127.0.0.1:4870`]);
      await send(first);
      await settle();
      assert.equal(dialled.length, 1, "a replay is not dialled");
      await send(encodeDialBack(ME, 4870, Date.now() + 5));
      await settle();
      assert.equal(dialled.length, 2, "a newer request is");
      wanted = false;
      await send(encodeDialBack(ME, 4870, Date.now() + 10));
      await settle();
      assert.equal(dialled.length, 2, "a key this node does not peer with is not dialled");
    } finally {
      sender.close();
      l.stop();
    }
  });
});

describe("forgetting dialled-back peerings (staleDialBacks)", () => {
  const uri = `tcp://198.18.0.201:4863?key=${OTHER}`;
  const d = { uri, publicKey: OTHER, at: 0 };
  const peer = (o: Partial<PeerInfo>): PeerInfo => ({ publicKey: OTHER, address: "200::1", remote: "tcp://198.18.0.201:4863", up: true, inbound: false, ...o });
  const wants = () => true;
  it("keeps one while it is young, and while it is up for a key this node peers with", () => {
    assert.deepEqual(staleDialBacks([d], [], new Set(), wants, DIAL_BACK_KEEP_MS - 1), []);
    assert.deepEqual(staleDialBacks([d], [peer({})], new Set(), wants, DIAL_BACK_KEEP_MS), []);
  });
  it("forgets one that is down (the member moved on), or up for a key this node no longer peers with", () => {
    assert.deepEqual(staleDialBacks([d], [peer({ up: false, publicKey: "" })], new Set(), wants, DIAL_BACK_KEEP_MS), [d]);
    assert.deepEqual(staleDialBacks([d], [peer({ remote: "tcp://198.18.0.202:4863" })], new Set(), wants, DIAL_BACK_KEEP_MS), [d]);
    assert.deepEqual(staleDialBacks([d], [peer({ inbound: true })], new Set(), wants, DIAL_BACK_KEEP_MS), [d], "an inbound peering from that address is not the one dialled");
    assert.deepEqual(staleDialBacks([d], [peer({})], new Set(), () => false, DIAL_BACK_KEEP_MS), [d]);
  });
  it("never one that is a configured peer now (the member advertised that address)", () => {
    assert.deepEqual(staleDialBacks([d], [], new Set([uri]), wants, 10 * DIAL_BACK_KEEP_MS), []);
  });
});
