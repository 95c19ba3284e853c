import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { EtcdError, GRPCUnavailableError, GRPCDeadlineExceededError, GRPCUnknownError } from "etcd3";
import { isDropped, readOnceMoreIfDropped } from "../../src/consensus/client.ts";

describe("isDropped", () => {
  it("is a dropped connection, or an etcd server that was stopping (through a grpc-proxy it comes as UNKNOWN)", () => {
    assert.equal(isDropped(new GRPCUnavailableError("14 UNAVAILABLE: Connection dropped")), true);
    assert.equal(isDropped(new GRPCUnavailableError("14 UNAVAILABLE: etcdserver: server stopped")), true);
    assert.equal(isDropped(new GRPCUnknownError("2 UNKNOWN: etcdserver: server stopped")), true);
  });
  it("is not an answer of a running etcd, nor a timeout", () => {
    assert.equal(isDropped(new GRPCUnknownError("2 UNKNOWN: etcdserver: request timed out")), false);
    assert.equal(isDropped(new EtcdError("etcdserver: mvcc: required revision has been compacted")), false);
    assert.equal(isDropped(new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED")), false);
    assert.equal(isDropped(new Error("etcdserver: server stopped")), false);
  });
});

describe("readOnceMoreIfDropped", () => {
  it("asks once more after a dropped connection", async () => {
    let calls = 0;
    const v = await readOnceMoreIfDropped(async () => {
      if (calls++ === 0) throw new GRPCUnavailableError("14 UNAVAILABLE: Connection dropped");
      return "rows";
    }, 1);
    assert.equal(v, "rows");
    assert.equal(calls, 2);
  });
  it("asks once more when the etcd it reached was stopping (a voter leaving, seen through a proxy)", async () => {
    let calls = 0;
    const v = await readOnceMoreIfDropped(async () => {
      if (calls++ === 0) throw new GRPCUnknownError("2 UNKNOWN: etcdserver: server stopped");
      return "rows";
    }, 1);
    assert.equal(v, "rows");
    assert.equal(calls, 2);
  });
  it("throws a second drop, and any other error at once", async () => {
    let calls = 0;
    await assert.rejects(readOnceMoreIfDropped(async () => { calls++; throw new GRPCUnavailableError("dropped"); }, 1), GRPCUnavailableError);
    assert.equal(calls, 2);
    calls = 0;
    await assert.rejects(readOnceMoreIfDropped(async () => { calls++; throw new GRPCDeadlineExceededError("slow"); }, 1), GRPCDeadlineExceededError);
    assert.equal(calls, 1);
  });
});
