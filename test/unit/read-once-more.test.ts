import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { GRPCUnavailableError, GRPCDeadlineExceededError } from "etcd3";
import { readOnceMoreIfDropped } from "../../src/consensus/client.ts";

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
  it("throws a second drop, and any other error at once", async () => {
    let calls = 0;
    await assert.rejects(readOnceMoreIfDropped(async () => { calls++; throw new GRPCUnavailableError("dropped"); }, 1), GRPCUnavailableError);
    assert.equal(calls, 2);
    calls = 0;
    await assert.rejects(readOnceMoreIfDropped(async () => { calls++; throw new GRPCDeadlineExceededError("slow"); }, 1), GRPCDeadlineExceededError);
    assert.equal(calls, 1);
  });
});
