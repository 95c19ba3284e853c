import { strict as assert } from "node:assert";
import { before, describe, it } from "node:test";
import { KEY_ROOT } from "../../src/config/flatten.ts";
import { readKvConfig, updateKvMapping } from "../../src/consensus/kv-config.ts";
import { KEYS } from "../../src/consensus/settings.ts";
import { etcdForSuite, haveEtcd } from "../helpers/etcd-single.ts";

/*
 * The shared config is read by every member every 30 s and before every config write. It
 * lives beside keys that are not config and can grow without bound — job runs (each with up to
 * 4 KiB of output), link reports, node records — which the read must not fetch: past the
 * client's 4 MiB message limit, a read of the whole prefix fails and no member could read or
 * change the config at all.
 */
describe("reading the shared config beside a large jobs history, against a real etcd", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  const etcd = etcdForSuite();
  const K = "b".repeat(64);
  const config = {
    [`${KEY_ROOT}/raptiformica_api_version`]: "0.1",
    [`${KEY_ROOT}/meshnet/etcd/client_port`]: "2379",
    [`${KEY_ROOT}/meshnet/neighbours/${K}/host`]: "198.51.100.7",
  };

  before(async () => {
    const client = etcd.client;
    for (const [k, v] of Object.entries(config)) await client.put(k).value(v);
    // 6 MiB of job runs (in 64 KiB values for speed; a run keeps at most 4 KiB of output, so
    // about 1 500 runs), and a record, a link report, a gone mark and the voter log.
    const tail = "x".repeat(64 * 1024);
    for (let i = 0; i < 96; i++) await client.put(`${KEYS.jobs}job-${i}/runs/r1`).value(tail);
    await client.put(`${KEYS.nodes}${K}`).value("{}");
    await client.put(`${KEYS.links}${K}`).value("{}");
    await client.put(`${KEYS.gone}${K}`).value("1");
    await client.put(KEYS.voterLog).value("[]");
  });

  it("reads the config and nothing else", async () => {
    const { mapping, unusable } = await readKvConfig(etcd.client, 5000);
    assert.deepEqual(mapping, config);
    assert.deepEqual(unusable, []);
  });

  it("changes it", async () => {
    await updateKvMapping(etcd.client, (m) => ({ ...m, [`${KEY_ROOT}/meshnet/etcd/max_voters`]: "5" }), 5000);
    assert.equal((await readKvConfig(etcd.client, 5000)).mapping[`${KEY_ROOT}/meshnet/etcd/max_voters`], "5");
    assert.equal(await etcd.client.get(`${KEYS.jobs}job-1/runs/r1`).string().then((s) => s?.length), 64 * 1024, "the jobs are untouched");
  });
});
