/**
 * The chaos run's application on one member: an etcd3 client on the member's local endpoint
 * (https://127.0.0.1:2379, the interface apps use), run inside the member's network namespace
 * (a process of its own: an in-process client cannot enter a namespace). Every `--every` ms it
 * starts one operation, chosen with a seeded PRNG:
 *
 * - read of a register key (`--keys` and `--read-keys`, linearizable `get`), deadline `--read-deadline`;
 * - write of a unique value (`<member>.<incarnation>.<n>`) to a register key (`--keys`);
 * - write of a new key `<--once-prefix><member>.<incarnation>.<n>`, never overwritten: the
 *   acknowledged ones must all be there at the end.
 *
 * Writes get `--write-deadline`. At most `--max-reads` reads and `--max-writes` writes are in
 * flight (a hung endpoint does not pile up more). Each event is one JSON line on stdout, written
 * synchronously (stdout is a file), the invocation before the request leaves:
 *
 *   {"e":"invoke","id":"n1.0.7","f":"write","key":"chaos/r0","value":"n1.0.7","t":<epoch ms>}
 *   {"e":"ok","id":"n1.0.7","t":…,"value"?: <read: string|null>}
 *   {"e":"err","id":"n1.0.7","t":…,"err":"…"}
 *
 * An invocation without a later line is an operation whose answer never came (the process was
 * killed). Runs until SIGTERM (then waits for what is in flight) or `--seconds`.
 *
 * `dump --prefix P` instead prints {"keys": {key: value}} of every key under P (one
 * linearizable range read, retried for up to `--seconds`, default 60), for the final check.
 *
 *   node --import tsx test/chaos/workload-client.ts --tls-dir DIR --member n1 --incarnation 0 --seed 42 \
 *     [--keys chaos/r0,chaos/r1] [--read-keys raptiformica/chaos/c0] [--once-prefix chaos/once/] [--every 100]
 *   node --import tsx test/chaos/workload-client.ts dump --tls-dir DIR --prefix chaos/once/
 */
import { readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { noop } from "cockatiel";
import { Etcd3 } from "etcd3";
import { mulberry32, seedFor } from "./prng.ts";

const argv = process.argv.slice(2);
const mode = argv[0] === "dump" ? "dump" : "run";
function opt(name: string, def: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
}
function num(name: string, def: number): number {
  const v = Number(opt(name, String(def)));
  if (!Number.isFinite(v)) throw new Error(`${name} needs a number`);
  return v;
}
const list = (name: string, def: string) => opt(name, def).split(",").filter(Boolean);

const tlsDir = opt("--tls-dir", "");
if (!tlsDir) throw new Error("--tls-dir is required (the member's node/etcd/tls)");
const endpoint = opt("--endpoint", "https://127.0.0.1:2379");

/**
 * Like src/consensus/client.ts's openClient, plus a short reconnect back-off: grpc-js otherwise
 * waits up to 2 minutes between reconnect attempts after an endpoint was gone, and the stall
 * figure would measure the client's back-off instead of the member.
 */
const client = new Etcd3({
  hosts: [endpoint],
  credentials: {
    rootCertificate: readFileSync(join(tlsDir, "ca.crt")),
    certChain: readFileSync(join(tlsDir, "node.crt")),
    privateKey: readFileSync(join(tlsDir, "node.key")),
  },
  dialTimeout: 1000,
  grpcOptions: {
    "grpc.ssl_target_name_override": "localhost",
    "grpc.default_authority": "localhost",
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 500,
  },
  faultHandling: { host: () => noop, global: noop },
});

const emit = (o: object) => writeSync(1, `${JSON.stringify(o)}\n`);
const brief = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 160);

if (mode === "dump") {
  const prefix = opt("--prefix", "chaos/once/");
  const until = Date.now() + num("--seconds", 60) * 1000;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const keys = await client.getAll().prefix(prefix).options({ deadline: Date.now() + 5000 }).strings();
      emit({ keys });
      client.close();
      process.exit(0);
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  process.stderr.write(`no answer for the range read of ${prefix}: ${brief(last)}\n`);
  process.exit(1);
}

const member = opt("--member", "");
if (!member) throw new Error("--member is required");
const incarnation = opt("--incarnation", "0");
const rand = mulberry32(seedFor(num("--seed", 1), `${member}.${incarnation}`));
const keys = list("--keys", "chaos/r0,chaos/r1,chaos/r2");
const readKeys = [...keys, ...list("--read-keys", "")];
const oncePrefix = opt("--once-prefix", "chaos/once/");
const every = num("--every", 100);
const readDeadline = num("--read-deadline", 1000);
const writeDeadline = num("--write-deadline", 3000);
const maxReads = num("--max-reads", 10);
const maxWrites = num("--max-writes", 20);
const seconds = num("--seconds", 24 * 3600);

let n = 0;
let reads = 0;
let writes = 0;
let stopping = false;

function track(id: string, p: Promise<unknown>, read: boolean): void {
  if (read) reads++;
  else writes++;
  p.then(
    (value) => emit({ e: "ok", id, t: Date.now(), ...(read ? { value: value ?? null } : {}) }),
    (e: unknown) => emit({ e: "err", id, t: Date.now(), err: brief(e) }),
  ).finally(() => {
    if (read) reads--;
    else writes--;
  });
}

function one(): void {
  const x = rand();
  const id = `${member}.${incarnation}.${n++}`;
  if (x < 0.45) {
    if (reads >= maxReads) return;
    const key = readKeys[Math.floor(rand() * readKeys.length)]!;
    emit({ e: "invoke", id, f: "read", key, t: Date.now() });
    track(id, client.get(key).options({ deadline: Date.now() + readDeadline }).string(), true);
    return;
  }
  if (writes >= maxWrites) return;
  const key = x < 0.85 ? keys[Math.floor(rand() * keys.length)]! : `${oncePrefix}${id}`;
  emit({ e: "invoke", id, f: "write", key, value: id, t: Date.now() });
  track(id, client.put(key).value(id).options({ deadline: Date.now() + writeDeadline }).exec(), false);
}

const stopAt = Date.now() + seconds * 1000;
emit({ e: "start", member, incarnation, t: Date.now() });
const timer = setInterval(() => {
  if (stopping || Date.now() > stopAt) return stop();
  one();
}, every);

function stop(): void {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  const waitUntil = Date.now() + Math.max(readDeadline, writeDeadline) + 500;
  const check = setInterval(() => {
    if ((reads === 0 && writes === 0) || Date.now() > waitUntil) {
      clearInterval(check);
      emit({ e: "stop", t: Date.now() });
      client.close();
      process.exit(0);
    }
  }, 50);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
