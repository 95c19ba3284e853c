import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { KEY_ROOT, type FlatMapping } from "../../src/config/flatten.ts";
import { readKvMapping, seedKvIfEmpty } from "../../src/consensus/kv-config.ts";
import { etcdForSuite, haveEtcd } from "../helpers/etcd-single.ts";

/** etcd's request limit here; the default is 1.5 MiB, which the config of ~1600 members exceeds. */
const MAX_REQUEST_BYTES = 64 * 1024;

/** A config of `n` neighbours' worth of keys (~130 bytes each), as a member's local cache holds it. */
function bigConfig(n: number): FlatMapping {
  const m: FlatMapping = { [`${KEY_ROOT}/raptiformica_api_version`]: "0.1", [`${KEY_ROOT}/meshnet/etcd/client_port`]: "2379" };
  for (let i = 0; i < n; i++) m[`${KEY_ROOT}/meshnet/neighbours/${String(i).padStart(64, "0")}/host`] = `198.51.100.${i % 250}`;
  return m;
}

/*
 * Every agent runs the seed on its first connect. Against a KV that already holds the config
 * (every connect but the cluster's first) it must cost a small read, not the whole local cache
 * in one transaction: with the cache past etcd's request limit that transaction is refused and
 * the agent could never connect; with 1000 members restarting, etcd received 1000 copies of it.
 */
describe("seeding the KV from the local cache, against a real etcd", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  // --max-txn-ops as the agent starts etcd (etcdServerArgs).
  const etcd = etcdForSuite(["--max-request-bytes", String(MAX_REQUEST_BYTES), "--max-txn-ops", "10000"]);

  it("an empty KV gets the cache", async () => {
    const small = bigConfig(3);
    assert.equal(await seedKvIfEmpty(etcd.client, small), true);
    assert.deepEqual(await readKvMapping(etcd.client), small);
  });

  it("a seeded KV is left alone, however large the cache (larger than etcd takes in one request)", async () => {
    const big = bigConfig(1000);
    assert.ok(JSON.stringify(big).length > MAX_REQUEST_BYTES);
    assert.equal(await seedKvIfEmpty(etcd.client, big), false);
    assert.deepEqual(await readKvMapping(etcd.client), bigConfig(3));
  });
});
