/**
 * SharedConfig.snapshot, the read behind `config show/get` and the operator's reads through a
 * member: a read cut by a dropped connection (a new proxy member's local grpc-proxy restarting
 * as it learns its upstreams, seen on the fourth member of a docker cluster while it was being
 * spawned) is asked once more instead of failing the command with exit 75.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { GRPCDeadlineExceededError, GRPCUnavailableError, type Etcd3 } from "etcd3";
import { SharedConfig } from "../../src/node/shared-config.ts";
import type { LocalConfig } from "../../src/config/local.ts";
import type { Logger } from "../../src/util/log.ts";

/** A KV client whose reads of the config's ranges (one transaction) fail with `errors` in turn, then answer with `kvs`. */
function kvFailing(errors: Error[], kvs: Record<string, string>): { kv: Etcd3; reads: () => number } {
  let reads = 0;
  const txn = async () => {
    const e = errors[reads++];
    if (e) throw e;
    return { header: { revision: "1" }, responses: [{ response_range: { kvs: Object.entries(kvs).map(([key, value]) => ({ key: Buffer.from(key), value: Buffer.from(value), mod_revision: "1" })) } }] };
  };
  return { kv: { kv: { txn } } as unknown as Etcd3, reads: () => reads };
}

/** A SharedConfig connected to `kv` (its constructor is private: open() needs certificates and a live etcd). */
function connected(kv: Etcd3): SharedConfig {
  const ctor = SharedConfig as unknown as new (local: LocalConfig, log: Logger, kv: Etcd3, unreachable: boolean) => SharedConfig;
  return new ctor({} as LocalConfig, {} as Logger, kv, false);
}

describe("SharedConfig.snapshot", () => {
  it("asks the KV once more when the connection was dropped", async () => {
    const { kv, reads } = kvFailing([new GRPCUnavailableError("14 UNAVAILABLE: Connection dropped")], { "raptiformica/a": "1" });
    const s = await connected(kv).snapshot();
    assert.deepEqual(s, { mapping: { "raptiformica/a": "1" }, origin: "cluster" });
    assert.equal(reads(), 2);
  });

  it("fails on a second drop, and on any other error at once", async () => {
    const twice = kvFailing([new GRPCUnavailableError("dropped"), new GRPCUnavailableError("dropped")], {});
    await assert.rejects(connected(twice.kv).snapshot(), GRPCUnavailableError);
    assert.equal(twice.reads(), 2);
    const slow = kvFailing([new GRPCDeadlineExceededError("slow")], {});
    await assert.rejects(connected(slow.kv).snapshot(), GRPCDeadlineExceededError);
    assert.equal(slow.reads(), 1);
  });
});
