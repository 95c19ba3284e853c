/**
 * A write prober for bench/healing.ts, run inside a lab node's namespace (an in-process client
 * cannot enter a namespace, so this is a small process of its own, started once, before the
 * fault): starts a `put` on the node's local etcd endpoint every `--every` ms (each with its own
 * gRPC deadline, at most `--in-flight` outstanding) and prints one JSON line per completed put:
 * {"start": epoch ms, "end": epoch ms, "ok": true|false, "err"?: "..."}. No CLI start-up in the
 * figure: only etcd's own unavailability plus one round trip.
 *
 *   node --import tsx bench/lib/etcd-writer.ts --tls-dir DIR [--endpoint URL] [--every MS] [--seconds S]
 */
import { join } from "node:path";
import { openClient } from "../../src/consensus/client.ts";
import { numOpt, strOpt } from "./common.ts";

const tlsDir = strOpt("--tls-dir", "");
if (!tlsDir) throw new Error("--tls-dir is required");
const endpoint = strOpt("--endpoint", "https://127.0.0.1:2379");
const every = numOpt("--every", 50);
const seconds = numOpt("--seconds", 60);
const deadlineMs = numOpt("--deadline", 3000);
const maxInFlight = numOpt("--in-flight", 40);
const key = strOpt("--key", "raptiformica/bench/healing/writer");

const client = openClient([endpoint], { caCert: join(tlsDir, "ca.crt"), nodeCert: join(tlsDir, "node.crt"), nodeKey: join(tlsDir, "node.key") }, 1000);
let inFlight = 0;
let n = 0;
const stopAt = Date.now() + seconds * 1000;

function one(): void {
  const start = Date.now();
  inFlight++;
  const value = String(n++);
  client
    .put(key)
    .value(value)
    .options({ deadline: start + deadlineMs })
    .exec()
    .then(
      () => process.stdout.write(`${JSON.stringify({ start, end: Date.now(), ok: true })}\n`),
      (e: unknown) =>
        process.stdout.write(`${JSON.stringify({ start, end: Date.now(), ok: false, err: String(e instanceof Error ? e.message : e).slice(0, 120) })}\n`),
    )
    .finally(() => inFlight--);
}

process.stdout.write(`${JSON.stringify({ ready: Date.now() })}\n`);
const timer = setInterval(() => {
  if (Date.now() > stopAt) {
    clearInterval(timer);
    setTimeout(() => {
      client.close();
      process.exit(0);
    }, deadlineMs + 100);
    return;
  }
  if (inFlight < maxInFlight) one();
}, every);
