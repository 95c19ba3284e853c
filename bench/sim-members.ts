/**
 * Benchmark: N simulated members (`--members`, default 1000) against a real 5-voter etcd
 * cluster on loopback, in this one Node process. Each simulated member is the agent's KV side
 * built from the project's own modules (bench/lib/sim-member.ts: KvSession with its own etcd
 * client, the lease-backed node record and the watch on raptiformica/; ConfigView and the
 * watch routing; on the etcd leader, LeaderDuties: voter manager and eviction pass) and runs
 * the agent's loop timing (nextInterval). No mesh, no processes per member. Proxy members talk
 * straight to one of the voters (round robin) instead of a local grpc-proxy.
 *
 * Phases: the voters start (etcdServerArgs: mutual TLS, compaction, pre-vote); every member's
 * local cache holds the base config and all N neighbour entries (the first to connect seeds the
 * KV with it); all members start at once (`--ramp-seconds` spreads the starts); registration =
 * start → its node record written (per member), and until all N exist; once all watch, a
 * steady window (`--steady-seconds`, 15) measures the etcd leader's CPU, the gRPC messages per
 * second by method (etcd's metrics, all voters summed), this process's CPU and event-loop
 * delay; then `--changes` (5) `config set` equivalents (updateKvMapping of one key, as the CLI
 * does) 2 s apart, each timed until every member's watched copy (ConfigView.kvCopy) holds the
 * new value. Memory: this process's RSS and heap after registration, per member.
 *
 *   node --import tsx bench/sim-members.ts [--members 1000] [--voters 5] [--etcd PATH]
 *        [--ramp-seconds 0] [--steady-seconds 15] [--changes 5] [--register-timeout 120] [--steady-ms 5000]
 *
 * Every wait is bounded; the etcd processes and their data dir are removed on exit (also on
 * Ctrl-C or a failure). Prints a table and a JSON line.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import Table from "cli-table3";
import type { FlatMapping } from "../src/config/flatten.ts";
import { discoverModules, mergeModuleFiles } from "../src/config/modules.ts";
import { openClient } from "../src/consensus/client.ts";
import { updateKvMapping } from "../src/consensus/kv-config.ts";
import { KEYS } from "../src/consensus/settings.ts";
import { neighbourMapping } from "../src/mesh/neighbours.ts";
import { addressForKey } from "../src/mesh/yggdrasil/address.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { brief, numOpt, procStat, sleep, strOpt, TICK } from "./lib/common.ts";
import { summarize } from "./lib/latency.ts";
import { scrapeMetrics, startLoopbackCluster, type LoopbackCluster } from "./lib/loopback-etcd.ts";
import { SimMember } from "./lib/sim-member.ts";

const N = numOpt("--members", 1000);
const VOTERS = numOpt("--voters", 5);
const ETCD_35 = "/opt/raptiformica-test/etcd-3.5/root/usr/bin/etcd";
const etcdBinary = strOpt("--etcd", existsSync(ETCD_35) ? ETCD_35 : "/usr/bin/etcd");
const rampSeconds = numOpt("--ramp-seconds", 0);
const steadySeconds = numOpt("--steady-seconds", 15);
const changes = numOpt("--changes", 5);
const registerTimeoutS = numOpt("--register-timeout", 120);
const steadyMs = numOpt("--steady-ms", 5000);
const PROBE_KEY = "raptiformica/bench/sim_probe";

const etcdVersion = /etcd Version:\s*(\S+)/.exec(spawnSync(etcdBinary, ["--version"], { encoding: "utf8" }).stdout ?? "")?.[1] ?? "?";
const r1 = (x: number) => Math.round(x * 10) / 10;
const mb = (bytes: number) => r1(bytes / 1024 / 1024);

/** Waits until `done()` or `timeoutMs`; true when done. */
async function waitFor(done: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > end) return false;
    await sleep(stepMs);
  }
  return true;
}

function etcdCpuTicks(c: LoopbackCluster): number[] {
  return c.members.map((m) => {
    try {
      return procStat(m.proc.pid!).cpuTicks;
    } catch {
      return 0;
    }
  });
}

/** Established TCP connections to the voters' client ports (from /proc/net/tcp, both ends on loopback). */
function clientConnections(c: LoopbackCluster): number {
  const ports = new Set(c.members.map((m) => m.clientPort.toString(16).toUpperCase().padStart(4, "0")));
  let n = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== "01") continue; // 01 = ESTABLISHED
    if (ports.has(f[1]!.split(":")[1]!)) n++; // server side of the connection
  }
  return n;
}

/** Sum over the voters of gRPC messages received by method (LeaseKeepAlive, Range, Txn, Watch …). */
async function grpcReceived(c: LoopbackCluster): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of c.members) {
    const metrics = await scrapeMetrics(m.metricsUrl).catch(() => new Map<string, number>());
    for (const [k, v] of metrics) {
      const hit = /^grpc_server_msg_received_total\{.*grpc_method="(\w+)"/.exec(k);
      if (hit) out.set(hit[1]!, (out.get(hit[1]!) ?? 0) + v);
    }
  }
  return out;
}

async function watchersOnLeader(c: LoopbackCluster, leader: number): Promise<Record<string, number>> {
  const m = await scrapeMetrics(c.members[leader]!.metricsUrl).catch(() => new Map<string, number>());
  const pick = (name: string) => m.get(name) ?? -1;
  return { watchStreams: pick("etcd_debugging_mvcc_watch_stream_total"), watchers: pick("etcd_debugging_mvcc_watcher_total") };
}

/** Which voter leads: the one whose etcd_server_is_leader is 1 (index 0 when none says so). */
async function leaderIndex(c: LoopbackCluster): Promise<number> {
  for (let i = 0; i < c.members.length; i++) {
    const m = await scrapeMetrics(c.members[i]!.metricsUrl).catch(() => new Map<string, number>());
    if (m.get("etcd_server_is_leader") === 1) return i;
  }
  return 0;
}

async function main(): Promise<void> {
  console.error(`starting ${VOTERS} etcd ${etcdVersion} voters on loopback (${etcdBinary})`);
  const cluster = await startLoopbackCluster({ etcdBinary, voters: VOTERS, timeoutMs: 30_000 });
  const members: SimMember[] = [];
  try {
    const admin = openClient(cluster.members.map((m) => `https://127.0.0.1:${m.clientPort}`), cluster.tls, 2000);
    // Identities: voters peer on their etcd's address; the others have a 200::/7 address from their key.
    const ids = Array.from({ length: N }, (_, i) => {
      const publicKey = randomBytes(32).toString("hex");
      return { publicKey, address: i < VOTERS ? cluster.members[i]!.address : addressForKey(publicKey), name: `m${i}` };
    });
    const base = mergeModuleFiles(discoverModules(join(ROOT, "modules"), join(cluster.dir, "no-user-modules")).files);
    const cache: FlatMapping = { ...base };
    for (const id of ids) Object.assign(cache, neighbourMapping({ publicKey: id.publicKey, meshAddress: id.address, host: `198.51.100.${1 + (ids.indexOf(id) % 250)}`, sshPort: 22, yggdrasilPort: 4863, yggdrasilMajor: "0.5", name: id.name }));

    const heapBase = process.memoryUsage();
    let probe: { value: string; t0: number; got: Map<number, number> } | undefined;
    const checkProbe = (m: SimMember) => {
      if (probe && !probe.got.has(m.o.index) && m.config.kvCopy?.[PROBE_KEY] === probe.value) probe.got.set(m.o.index, performance.now() - probe.t0);
    };
    let watching = 0;
    const watchingSet = new Set<number>();
    const errorCounts = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const etcd = cluster.members[i % VOTERS]!;
      members.push(
        new SimMember({
          index: i,
          publicKey: ids[i]!.publicKey,
          address: ids[i]!.address,
          role: i < VOTERS ? "voter" : "proxy",
          clientPort: etcd.clientPort,
          peerPort: cluster.peerPort,
          tls: cluster.tls,
          cache,
          noFiles: join(cluster.dir, "no-files"),
          steadyMs,
          onWatched: (m, key) => {
            if (key === PROBE_KEY) checkProbe(m);
          },
          onTick: (m, error) => {
            if (error) {
              const e = brief(error).replace(/[0-9a-f]{64}/g, "<key>");
              errorCounts.set(e, (errorCounts.get(e) ?? 0) + 1);
            }
            if (!watchingSet.has(m.o.index) && m.state.registered) {
              watchingSet.add(m.o.index);
              watching++;
            }
            checkProbe(m);
          },
        }),
      );
    }

    // ---- registration
    const regCpu0 = etcdCpuTicks(cluster);
    const regT0 = performance.now();
    const regWall0 = Date.now();
    // Progress on stderr every 5 s: where a large N gets stuck.
    const progressDelay = monitorEventLoopDelay({ resolution: 10 });
    progressDelay.enable();
    let lastCpu = etcdCpuTicks(cluster);
    const progress = setInterval(() => {
      const cpu = etcdCpuTicks(cluster);
      const etcdPct = cpu.map((c, i) => Math.round(((c - lastCpu[i]!) / TICK / 5) * 100));
      lastCpu = cpu;
      const mem = process.memoryUsage();
      const registered = members.filter((m) => m.registeredAt !== undefined).length;
      const top = [...errorCounts].sort((a, b) => b[1] - a[1])[0];
      console.error(
        `  +${Math.round((performance.now() - regT0) / 1000)} s: ${registered}/${N} registered, ${watching} ticked after; rss ${mb(mem.rss)} MB heap ${mb(mem.heapUsed)} MB; loop delay p99 ${r1(progressDelay.percentile(99) / 1e6)} ms; etcd CPU % ${etcdPct.join(",")}${top ? `; errors ×${top[1]}: ${top[0]}` : ""}`,
      );
      progressDelay.reset();
    }, 5000);
    for (let i = 0; i < N && performance.now() - regT0 < registerTimeoutS * 1000; i++) {
      members[i]!.start();
      if (rampSeconds > 0) await sleep((rampSeconds * 1000) / N);
    }
    // The bound counts from the first start: a slow ramp (the loop behind) eats into it.
    const allRegistered = await waitFor(() => members.every((m) => m.registeredAt !== undefined), Math.max(0, registerTimeoutS * 1000 - (performance.now() - regT0)));
    clearInterval(progress);
    progressDelay.disable();
    const regT1 = performance.now();
    const regSeconds = (regT1 - regT0) / 1000;
    const regCpu1 = etcdCpuTicks(cluster);
    const regPerMember = members.filter((m) => m.registeredAt !== undefined).map((m) => m.registeredAt! - m.startedAt);
    const records = Number(await admin.getAll().prefix(KEYS.nodes).count().catch(() => -1));
    // All watches started (the tick after register has run once everywhere).
    await waitFor(() => watching >= N, 30_000);
    await sleep(2000);
    // Each voter's own id and the leader's, from its metrics (no gRPC call that a busy process could miss).
    const leader = await leaderIndex(cluster);
    const leaderPid = cluster.members[leader]!.proc.pid!;
    const heapReg = process.memoryUsage();
    const connections = clientConnections(cluster);
    const watchInfo = await watchersOnLeader(cluster, leader);

    // ---- steady state
    const eld = monitorEventLoopDelay({ resolution: 10 });
    const st0 = { cpu: etcdCpuTicks(cluster), grpc: await grpcReceived(cluster), self: process.cpuUsage(), t: performance.now() };
    eld.enable();
    await sleep(steadySeconds * 1000);
    eld.disable();
    const st1 = { cpu: etcdCpuTicks(cluster), grpc: await grpcReceived(cluster), self: process.cpuUsage(st0.self), t: performance.now() };
    const steadyS = (st1.t - st0.t) / 1000;
    const perSecond = Object.fromEntries([...st1.grpc].map(([k, v]) => [k, r1((v - (st0.grpc.get(k) ?? 0)) / steadyS)]).filter(([, v]) => (v as number) > 0));
    const steadyLeaderCpu = r1(((st1.cpu[leader]! - st0.cpu[leader]!) / TICK / steadyS) * 100);
    const steadyAllEtcdCpu = r1(((st1.cpu.reduce((a, b) => a + b, 0) - st0.cpu.reduce((a, b) => a + b, 0)) / TICK / steadyS) * 100);
    const simCpu = r1(((st1.self.user + st1.self.system) / 1e6 / steadyS) * 100);
    const loopDelay = { p50Ms: r1(eld.percentile(50) / 1e6), p99Ms: r1(eld.percentile(99) / 1e6), maxMs: r1(eld.max / 1e6) };
    const leaderRssMb = r1(procStat(leaderPid).rssKb / 1024);

    // ---- config changes
    const samples: number[] = [];
    const writeMs: number[] = [];
    const perChange: { writeMs: number; reached: number; p99Ms: number | null; maxMs: number | null }[] = [];
    const chCpu0 = etcdCpuTicks(cluster);
    const chT0 = performance.now();
    eld.reset();
    eld.enable();
    for (let c = 0; c < changes; c++) {
      const value = `v${c}-${Date.now()}`;
      probe = { value, t0: performance.now(), got: new Map() };
      await updateKvMapping(admin, (m) => ({ ...m, [PROBE_KEY]: value }), 5000);
      const w = performance.now() - probe.t0;
      writeMs.push(w);
      await waitFor(() => probe!.got.size >= N, 10_000, 10);
      const xs = [...probe.got.values()];
      samples.push(...xs);
      const s = summarize(xs, N);
      perChange.push({ writeMs: r1(w), reached: xs.length, p99Ms: s.p99Ms, maxMs: s.maxMs });
      probe = undefined;
      await sleep(2000);
    }
    eld.disable();
    const chS = (performance.now() - chT0) / 1000;
    const chCpu1 = etcdCpuTicks(cluster);
    const changeLoopDelay = { p99Ms: r1(eld.percentile(99) / 1e6), maxMs: r1(eld.max / 1e6) };
    const propagation = summarize(samples, N * changes);

    const gone = Number(await admin.getAll().prefix(KEYS.gone).count().catch(() => -1));
    const memberErrors = members.filter((m) => m.errors > 0).length;
    admin.close();

    const result = {
      bench: "sim-members",
      members: N,
      voters: VOTERS,
      etcd: etcdVersion,
      processes: 1,
      rampSeconds,
      config: { keys: Object.keys(cache).length, bytes: Object.entries(cache).reduce((a, [k, v]) => a + k.length + v.length, 0) },
      registration: {
        allRegistered,
        totalS: r1(regSeconds * 10) / 10,
        records,
        perMember: summarize(regPerMember, N),
        leaderCpuPercent: r1(((regCpu1[leader]! - regCpu0[leader]!) / TICK / regSeconds) * 100),
        started: new Date(regWall0).toISOString(),
      },
      steady: {
        seconds: r1(steadyS),
        leaderCpuPercent: steadyLeaderCpu,
        allEtcdCpuPercent: steadyAllEtcdCpu,
        leaderRssMb,
        grpcMsgsPerSecond: perSecond,
        clientConnections: connections,
        leaderWatch: watchInfo,
        simProcessCpuPercent: simCpu,
        eventLoopDelay: loopDelay,
      },
      configChange: {
        changes,
        writeMs: summarize(writeMs),
        propagation,
        perChange,
        leaderCpuPercent: r1(((chCpu1[leader]! - chCpu0[leader]!) / TICK / chS) * 100),
        eventLoopDelay: changeLoopDelay,
      },
      memory: {
        rssMb: mb(heapReg.rss),
        heapUsedMb: mb(heapReg.heapUsed),
        perMemberRssKb: r1((heapReg.rss - heapBase.rss) / 1024 / N),
        perMemberHeapKb: r1((heapReg.heapUsed - heapBase.heapUsed) / 1024 / N),
      },
      errors: { membersWithErrors: memberErrors, top: [...errorCounts].sort((a, b) => b[1] - a[1]).slice(0, 5) },
      goneMarksLeft: gone,
    };

    const t = new Table({ head: ["figure", "value"] });
    const f = (s: { p50Ms: number | null; p99Ms: number | null; maxMs: number | null }) => `p50 ${s.p50Ms} / p99 ${s.p99Ms} / max ${s.maxMs} ms`;
    t.push(
      ["members / voters / etcd", `${N} / ${VOTERS} / ${etcdVersion} (one process)`],
      ["shared config", `${result.config.keys} keys, ${r1(result.config.bytes / 1024)} KB`],
      ["registration: all N records", `${result.registration.totalS} s (${records} records${allRegistered ? "" : ", NOT ALL"})`],
      ["registration: per member", f(result.registration.perMember)],
      ["registration: leader etcd CPU", `${result.registration.leaderCpuPercent} %`],
      ["config change → every copy", `${f(propagation)}; within 1 s: ${(propagation.within1s * 100).toFixed(1)} % (${propagation.missing} missing)`],
      ["config change: write (updateKvMapping)", f(result.configChange.writeMs)],
      ["steady: leader etcd CPU / all etcd", `${steadyLeaderCpu} % / ${steadyAllEtcdCpu} %`],
      ["steady: leader etcd RSS", `${leaderRssMb} MB`],
      ["steady: gRPC msgs/s (all voters)", Object.entries(perSecond).map(([k, v]) => `${k} ${v}`).join(", ")],
      ["client connections / watchers on leader", `${connections} / ${watchInfo.watchers} in ${watchInfo.watchStreams} streams`],
      ["sim process: CPU / event-loop delay p99", `${simCpu} % / ${loopDelay.p99Ms} ms (changes: p99 ${changeLoopDelay.p99Ms}, max ${changeLoopDelay.maxMs} ms)`],
      ["memory: process RSS / heap", `${result.memory.rssMb} / ${result.memory.heapUsedMb} MB`],
      ["memory per member: RSS / heap", `${result.memory.perMemberRssKb} / ${result.memory.perMemberHeapKb} KB`],
      ["members with errors / gone marks left", `${memberErrors} / ${gone}`],
    );
    console.log(t.toString());
    for (const [e, n] of result.errors.top) console.log(`  error ×${n}: ${e}`);
    console.log(JSON.stringify(result));
  } finally {
    await Promise.race([Promise.all(members.map((m) => m.stop())), sleep(10_000)]);
    await cluster.stop();
  }
}

const overall = setTimeout(() => {
  console.error("sim-members: gave up after 10 minutes");
  process.exit(1);
}, 600_000);
overall.unref();
main()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(`sim-members failed: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  });
