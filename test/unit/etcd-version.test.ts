import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { etcdVersion, parseEtcdVersion, proxyKeepaliveArgs } from "../../src/consensus/etcd-version.ts";

describe("etcd versions", () => {
  it("reads `etcd --version` of Debian 12 and 13", () => {
    assert.deepEqual(parseEtcdVersion("etcd Version: 3.4.23\nGit SHA: Not provided\n"), { major: 3, minor: 4, patch: 23 });
    assert.deepEqual(parseEtcdVersion("etcd Version: 3.5.16\nGit SHA: Not provided (use ./build instead of go build)\nGo Version: go1.24.0\n"), { major: 3, minor: 5, patch: 16 });
    assert.equal(parseEtcdVersion("etcdctl version: 3.5.16\n"), undefined);
  });
  it("gives the grpc-proxy upstream keep-alive from 3.5.13 on only", () => {
    assert.deepEqual(proxyKeepaliveArgs({ major: 3, minor: 4, patch: 23 }), []);
    assert.deepEqual(proxyKeepaliveArgs({ major: 3, minor: 5, patch: 12 }), []);
    assert.deepEqual(proxyKeepaliveArgs({ major: 3, minor: 5, patch: 13 }), ["--dial-keepalive-time", "10s", "--dial-keepalive-timeout", "3s"]);
    assert.deepEqual(proxyKeepaliveArgs({ major: 3, minor: 6, patch: 0 }), ["--dial-keepalive-time", "10s", "--dial-keepalive-timeout", "3s"]);
    assert.deepEqual(proxyKeepaliveArgs(undefined), []);
  });
  it("is undefined for a binary that cannot run", async () => {
    assert.equal(await etcdVersion("/nonexistent/etcd"), undefined);
  });
});
