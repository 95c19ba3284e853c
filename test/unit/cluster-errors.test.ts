import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { ClientRuntimeError, EtcdError, GRPCGenericError, GRPCUnavailableError } from "etcd3";
import { DeadlineExceeded, isClusterUnavailable } from "../../src/consensus/client.ts";
import { ClusterUnavailable, EXIT_CLUSTER_UNAVAILABLE, UserError } from "../../src/util/errors.ts";

describe("isClusterUnavailable", () => {
  it("is true for etcd client errors and our own deadline", () => {
    assert.equal(isClusterUnavailable(new GRPCUnavailableError("14 UNAVAILABLE: read ECONNRESET")), true);
    assert.equal(isClusterUnavailable(new GRPCGenericError("13 INTERNAL")), true);
    assert.equal(isClusterUnavailable(new EtcdError("etcdserver: request timed out")), true);
    assert.equal(isClusterUnavailable(new ClientRuntimeError("no hosts")), true);
    assert.equal(isClusterUnavailable(new DeadlineExceeded("etcd write of the shared config", 5000)), true);
  });

  it("is false for anything else: that is a bug, reported with its stack", () => {
    assert.equal(isClusterUnavailable(new TypeError("x is undefined")), false);
    assert.equal(isClusterUnavailable(new Error("PEM routines::no start line")), false);
    assert.equal(isClusterUnavailable("a string"), false);
    assert.equal(isClusterUnavailable(undefined), false);
  });

  it("is decided by class, not by name or message", () => {
    const late = new DeadlineExceeded("etcd member list", 3000);
    // The CLI's top level recognises it without loading the etcd client (src/main.ts).
    assert.ok(late instanceof ClusterUnavailable);
    assert.equal(late.exitCode, EXIT_CLUSTER_UNAVAILABLE);
    assert.equal(late.message, "etcd member list: no answer within 3000 ms");
    const lookalike = Object.assign(new Error("etcd member list: no answer within 3000 ms"), { name: "DeadlineExceeded" });
    assert.equal(isClusterUnavailable(lookalike), false);
    assert.equal(isClusterUnavailable(new UserError("etcd did not answer")), false);
  });
});
