import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerInfo } from "../../src/mesh/yggdrasil/admin.ts";
import { canonicalIp, encodeMovedNotice, parseMovedNotice, remoteEndpoint, staleEndpoints } from "../../src/node/moved-notice.ts";

const M = "201:aaaa::1";
const peer = (over: Partial<PeerInfo>): PeerInfo => ({ publicKey: "ab".repeat(32), address: M, remote: "tcp://10.0.0.5:4863", up: true, inbound: false, ...over });

describe("moved notice", () => {
  it("round-trips the gone addresses", () => {
    assert.deepEqual(parseMovedNotice(encodeMovedNotice(["10.0.0.5", "FD00::5"])), ["10.0.0.5", "fd00::5"]);
  });

  it("refuses anything that is not a version-1 list of IP addresses", () => {
    for (const bad of ["", "x", "{}", '{"v":2,"gone":["10.0.0.5"]}', '{"v":1,"gone":[]}', '{"v":1,"gone":["example.org"]}', '{"v":1,"gone":"10.0.0.5"}', `{"v":1,"gone":${JSON.stringify(Array(17).fill("10.0.0.1"))}}`]) {
      assert.equal(parseMovedNotice(Buffer.from(bad)), undefined, bad);
    }
    assert.equal(parseMovedNotice(Buffer.alloc(2000, 0x20)), undefined, "oversized");
    assert.throws(() => encodeMovedNotice(["not an ip"]));
    assert.throws(() => encodeMovedNotice([]));
  });

  it("reads host and port of getPeers' remote, IPv4 and IPv6, with or without a query", () => {
    assert.deepEqual(remoteEndpoint("tcp://198.18.0.1:4863"), { host: "198.18.0.1", port: 4863 });
    assert.deepEqual(remoteEndpoint("tls://[FD00::1]:4863?key=ab"), { host: "fd00::1", port: 4863 });
    assert.deepEqual(remoteEndpoint("tcp://[::ffff:10.0.0.5]:51234"), { host: "10.0.0.5", port: 51234 });
    assert.equal(remoteEndpoint("tcp://example.org:4863"), undefined);
    assert.equal(remoteEndpoint("tcp://10.0.0.1:0"), undefined);
    assert.equal(remoteEndpoint(""), undefined);
    assert.equal(canonicalIp("::FFFF:10.1.2.3"), "10.1.2.3");
  });

  it("closes only the sender's own peerings that end at a gone address", () => {
    const peers: PeerInfo[] = [
      peer({ remote: "tcp://10.0.0.5:4863" }), // outbound to the old address: stale
      peer({ remote: "tcp://10.0.0.5:40000", inbound: true }), // it dialled from the old address: stale
      peer({ remote: "tcp://10.0.9.9:40001", inbound: true }), // from its new address: kept
      peer({ remote: "tcp://10.0.0.5:4864", up: false }), // down already
      peer({ publicKey: "cd".repeat(32), address: "201:bbbb::1", remote: "tcp://10.0.0.5:4863" }), // another member at that host: not the sender's
    ];
    assert.deepEqual(staleEndpoints(peers, M, ["10.0.0.5"]), [
      { host: "10.0.0.5", port: 4863 },
      { host: "10.0.0.5", port: 40000 },
    ]);
    assert.deepEqual(staleEndpoints(peers, "201:cccc::1", ["10.0.0.5"]), [], "a sender that is no peer closes nothing");
    assert.deepEqual(staleEndpoints(peers, M, ["10.0.0.6"]), []);
  });
});
