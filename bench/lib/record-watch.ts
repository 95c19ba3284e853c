/**
 * A node-record watcher for bench/false-alarms.ts, run inside a lab node's namespace (an
 * in-process client cannot enter a namespace): watches `raptiformica/nodes/` on the node's
 * local etcd endpoint and prints one JSON line per event, `{"t": epoch ms, "type": "put" |
 * "delete", "key": "..."}`, and `{"t", "type": "watching"}` each time the watch (re)starts.
 * A deleted record is a member shown failed (or leaving): on a cluster nobody leaves, every
 * delete is a false alarm. Exits after `--seconds`.
 *
 *   node --import tsx bench/lib/record-watch.ts --tls-dir DIR [--endpoint URL] [--seconds S] [--prefix raptiformica/nodes/]
 *
 * `--prefix` watches another part of the KV the same way (e.g. `raptiformica/` to see what is
 * written at rest).
 */
import { join } from "node:path";
import { openClient } from "../../src/consensus/client.ts";
import { KEYS } from "../../src/consensus/settings.ts";
import { numOpt, strOpt } from "./common.ts";

const tlsDir = strOpt("--tls-dir", "");
if (!tlsDir) throw new Error("--tls-dir is required");
const endpoint = strOpt("--endpoint", "https://127.0.0.1:2379");
const seconds = numOpt("--seconds", 60);
/** What to watch (default: the node records); events under it are printed with their key. */
const prefix = strOpt("--prefix", KEYS.nodes);

const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
const client = openClient([endpoint], { caCert: join(tlsDir, "ca.crt"), nodeCert: join(tlsDir, "node.crt"), nodeKey: join(tlsDir, "node.key") }, 2000);

// etcd3's watcher resumes by itself after a dropped stream, from the revision it had seen.
const watcher = await client.watch().prefix(prefix).create();
line({ type: "watching" });
watcher.on("connected", () => line({ type: "watching" }));
watcher.on("put", (kv) => line({ type: "put", key: kv.key.toString() }));
watcher.on("delete", (kv) => line({ type: "delete", key: kv.key.toString() }));
watcher.on("error", (e: unknown) => line({ type: "error", error: String(e instanceof Error ? e.message : e).slice(0, 200) }));

setTimeout(() => {
  void watcher.cancel().finally(() => {
    client.close();
    process.exit(0);
  });
}, seconds * 1000);
