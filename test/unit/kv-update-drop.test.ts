import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { noop } from "cockatiel";
import { Etcd3, GRPCUnavailableError, GRPCUnknownError } from "etcd3";
import { KEY_ROOT } from "../../src/config/flatten.ts";
import { seedKvIfEmpty, updateKvMapping } from "../../src/consensus/kv-config.ts";
import { CuttingRelay, haveEtcd, startEtcd, type SingleEtcd } from "../helpers/etcd-single.ts";

/*
 * A new proxy member's grpc-proxy restarts as it learns its upstreams, and a voter may be
 * replaced under a command: a `config set` then meets a dropped connection (CI: a spawn failed
 * on its new member's `config set`, "14 UNAVAILABLE: Connection dropped"). The write is a
 * compare-and-swap on the keys' revisions, so it is made again; these tests cut the connection
 * of a real etcd under it, before the request reaches etcd and after etcd applied it.
 */
describe("a shared-config write cut by a dropped connection, against a real etcd", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  let etcd: SingleEtcd;
  let relay: CuttingRelay;
  let client: Etcd3;
  const key = (k: string) => `${KEY_ROOT}/test/${k}`;

  before(async () => {
    etcd = await startEtcd();
    relay = await CuttingRelay.start(etcd.url.replace("http://", ""));
    // As openClient makes it: no retries or breakers of the library's own.
    client = new Etcd3({ hosts: relay.url, faultHandling: { host: () => noop, global: noop } });
    await seedKvIfEmpty(client, { [`${KEY_ROOT}/raptiformica_api_version`]: "0.1" });
  });

  after(async () => {
    client?.close();
    await relay?.close();
    await etcd?.stop();
  });

  for (const mode of ["before-forwarding", "after-forwarding"] as const) {
    it(`is made again when the connection drops ${mode === "before-forwarding" ? "before the commit reaches etcd" : "after etcd applied the commit"}, and written once`, async () => {
      const cutsBefore = relay.cuts;
      let changes = 0;
      const after = await updateKvMapping(
        client,
        (m) => {
          // The commit follows this change: cut the connection under it (the first time).
          if (changes++ === 0) relay.cutNext(mode);
          return { ...m, [key(mode)]: "v" };
        },
        5000,
      );
      assert.equal(relay.cuts, cutsBefore + 1, "the relay cut one connection");
      assert.equal(after[key(mode)], "v");
      assert.equal(changes, 2, "a second round after the drop");
      const stored = await new Etcd3({ hosts: etcd.url }).get(key(mode)).exec();
      assert.equal(stored.kvs[0]?.value.toString(), "v");
      assert.equal(stored.kvs[0]?.version, "1", "written once: the second round found it applied, or made it");
    });
  }

  it("is made again when the etcd server it reached was stopping (a voter leaving; through a grpc-proxy the error comes as UNKNOWN)", async () => {
    let stopped = 0;
    const bind = (t: object, p: string | symbol) => {
      const v = Reflect.get(t, p) as unknown;
      return typeof v === "function" ? v.bind(t) : v;
    };
    // The first read of the round meets the stopping server (seen in bench/soak.ts: a proxy member's `config set` while a voter left).
    const kv = new Proxy(client.kv, {
      get: (t, p) =>
        p === "txn" && stopped === 0
          ? async () => {
              stopped++;
              throw new GRPCUnknownError("2 UNKNOWN: etcdserver: server stopped");
            }
          : bind(t, p),
    });
    const stopping = new Proxy(client, { get: (t, p) => (p === "kv" ? kv : bind(t, p)) });
    const after = await updateKvMapping(stopping, (m) => ({ ...m, [key("stopping")]: "v" }), 5000, 8, 3, 10);
    assert.equal(stopped, 1, "the first round met the stopping server");
    assert.equal(after[key("stopping")], "v");
    const stored = await new Etcd3({ hosts: etcd.url }).get(key("stopping")).exec();
    assert.equal(stored.kvs[0]?.value.toString(), "v");
  });

  it("gives up after a few drops in a row, with the etcd error", async () => {
    let changes = 0;
    await assert.rejects(
      updateKvMapping(client, (m) => {
        changes++;
        relay.cutNext("before-forwarding");
        return { ...m, [key("always")]: "v" };
      }, 5000, 8, 3, 50),
      GRPCUnavailableError,
    );
    assert.equal(changes, 4, "the first try and three more");
  });
});
