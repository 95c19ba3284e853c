/**
 * Benchmark: N simulated members (`--members`, default 1000) against a real 5-voter etcd
 * cluster on loopback, split over worker processes (bench/lib/sim-worker.ts; one Node process holds about 200 before its event loop falls behind). Each simulated member is the agent's KV side
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
 * does) `--change-gap-seconds` (2) apart, each timed until every member's watched copy (ConfigView.copyValue) holds the
 * new value. Memory: this process's RSS and heap after registration, per member.
 *
 *   node --import tsx bench/sim-members.ts [--members 1000] [--voters 5] [--etcd PATH]
 *        [--ramp-seconds 0] [--steady-seconds 15] [--changes 5] [--change-gap-seconds 2] [--register-timeout 120] [--steady-ms 5000]
 *        [--workers ⌈N/200⌉] [--profile DIR]
 *
 * Every wait is bounded; the etcd processes and their data dir are removed on exit (also on
 * Ctrl-C or a failure). Prints a table and a JSON line.
 */
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import Table from "cli-table3";
import type { FlatMapping } from "../src/config/flatten.ts";
import { discoverModules, mergeModuleFiles } from "../src/config/modules.ts";
import { openClient } from "../src/consensus/client.ts";
import { updateKvMapping } from "../src/consensus/kv-config.ts";
import { KEYS } from "../src/consensus/settings.ts";
import { neighbourMapping } from "../src/mesh/neighbours.ts";
import { addressForKey } from "../src/mesh/yggdrasil/address.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { brief, loadAverage, numOpt, procStat, sleep, strOpt, TICK } from "./lib/common.ts";
import { summarize } from "./lib/latency.ts";
import { scrapeMetrics, startLoopbackCluster, type LoopbackCluster } from "./lib/loopback-etcd.ts";
import { wallNow, type WorkerCommand, type WorkerReport, type WorkerSetup } from "./lib/sim-protocol.ts";

const N = numOpt("--members", 1000);
const VOTERS = numOpt("--voters", 5);
const ETCD_35 = "/opt/raptiformica-test/etcd-3.5/root/usr/bin/etcd";
const etcdBinary = strOpt("--etcd", existsSync(ETCD_35) ? ETCD_35 : "/usr/bin/etcd");
const rampSeconds = numOpt("--ramp-seconds", 0);
const steadySeconds = numOpt("--steady-seconds", 15);
const changes = numOpt("--changes", 5);
/** Pause after a change reached every member (or its wait ended) before the next one is written. */
const changeGapSeconds = numOpt("--change-gap-seconds", 2);
const registerTimeoutS = numOpt("--register-timeout", 120);
const steadyMs = numOpt("--steady-ms", 5000);
const PROBE_KEY = "raptiformica/bench/sim_probe";
// One process holds about 200 members with its event loop on time (300 stalled it up to 0.9 s).
const WORKERS = Math.max(1, numOpt("--workers", Math.ceil(N / 200)));
/** Where each worker writes a V8 CPU profile when it exits (`--profile DIR`; none by default). */
const PROFILE_DIR = strOpt("--profile", "");

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

/** The worker processes and what they report, gathered in one place. */
class Workers {
  readonly procs: ChildProcess[] = [];
  readonly registered = new Map<number, number>(); // index → ms from its start to its record
  readonly errorCounts: Map<string, number>[] = [];
  readonly membersWithErrors: number[] = [];
  probe: { value: string; t0: number; got: Map<number, number> } | undefined;
  private statsWaiters: ((r: Extract<WorkerReport, { type: "stats" }>) => void)[][] = [];

  async fork(setups: readonly WorkerSetup[]): Promise<void> {
    const ready = setups.map((setup, w) => {
      const proc = fork(join(import.meta.dirname, "lib", "sim-worker.ts"), [JSON.stringify(setup)], { execArgv: ["--import", "tsx", ...(PROFILE_DIR ? ["--cpu-prof", "--cpu-prof-dir", PROFILE_DIR] : [])], stdio: ["ignore", "inherit", "inherit", "ipc"] });
      this.procs.push(proc);
      this.errorCounts.push(new Map());
      this.membersWithErrors.push(0);
      this.statsWaiters.push([]);
      return new Promise<void>((resolve, reject) => {
        proc.once("exit", (code) => reject(new Error(`simulation worker ${w} exited (${code}) before it was ready`)));
        proc.on("message", (r: WorkerReport) => {
          if (r.type === "ready") resolve();
          else this.take(w, r);
        });
      });
    });
    await Promise.race([Promise.all(ready), sleep(60_000).then(() => Promise.reject(new Error("simulation workers not ready within 60 s")))]);
  }

  private take(w: number, r: WorkerReport): void {
    switch (r.type) {
      case "registered":
        this.registered.set(r.index, r.at - r.startedAt);
        break;
      case "errors":
        this.errorCounts[w] = new Map(r.counts);
        this.membersWithErrors[w] = r.membersWithErrors;
        break;
      case "probe":
        if (this.probe && r.value === this.probe.value && !this.probe.got.has(r.index)) this.probe.got.set(r.index, r.at - this.probe.t0);
        break;
      case "stats":
        this.statsWaiters[w]!.shift()?.(r);
        break;
    }
  }

  send(c: WorkerCommand): void {
    for (const p of this.procs) if (p.connected) p.send(c);
  }

  /** Every worker's memory, CPU since the last call and event-loop delay (bounded: 10 s). */
  async stats(): Promise<Extract<WorkerReport, { type: "stats" }>[]> {
    const got = this.procs.map((p, w) => new Promise<Extract<WorkerReport, { type: "stats" }>>((resolve) => {
      this.statsWaiters[w]!.push(resolve);
      if (p.connected) p.send({ type: "stats" } satisfies WorkerCommand);
    }));
    const none = { type: "stats" as const, rss: 0, heapUsed: 0, cpuMicros: 0, loopP99Ms: 0, loopMaxMs: 0 };
    return Promise.all(got.map((g) => Promise.race([g, sleep(10_000).then(() => none)])));
  }

  errors(): [string, number][] {
    const all = new Map<string, number>();
    for (const m of this.errorCounts) for (const [e, n] of m) all.set(e, (all.get(e) ?? 0) + n);
    return [...all].sort((a, b) => b[1] - a[1]);
  }

  async stop(): Promise<void> {
    const exited = this.procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once("exit", () => r()))));
    this.send({ type: "stop" });
    await Promise.race([Promise.all(exited), sleep(15_000)]);
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  console.error(`starting ${VOTERS} etcd ${etcdVersion} voters on loopback (${etcdBinary}); ${N} members in ${WORKERS} worker process(es)`);
  const cluster = await startLoopbackCluster({ etcdBinary, voters: VOTERS, timeoutMs: 30_000 });
  const workers = new Workers();
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
    const cacheFile = join(cluster.dir, "sim-cache.json");
    writeFileSync(cacheFile, JSON.stringify(cache));

    // Members dealt round robin over the workers, so each holds voters' and proxies' alike.
    const setups: WorkerSetup[] = Array.from({ length: WORKERS }, (_, w) => ({
      members: ids
        .map((id, i) => ({ index: i, publicKey: id.publicKey, address: id.address, role: (i < VOTERS ? "voter" : "proxy") as "voter" | "proxy", clientPort: cluster.members[i % VOTERS]!.clientPort }))
        .filter((m) => m.index % WORKERS === w),
      peerPort: cluster.peerPort,
      tls: cluster.tls,
      cacheFile,
      noFiles: join(cluster.dir, "no-files"),
      steadyMs,
      probeKey: PROBE_KEY,
    }));
    await workers.fork(setups);
    const statsBase = await workers.stats();

    // ---- registration
    const regCpu0 = etcdCpuTicks(cluster);
    const regT0 = performance.now();
    const regWall0 = Date.now();
    // Progress on stderr every 5 s: where a large N gets stuck.
    let lastCpu = etcdCpuTicks(cluster);
    const progress = setInterval(() => {
      const cpu = etcdCpuTicks(cluster);
      const etcdPct = cpu.map((c, i) => Math.round(((c - lastCpu[i]!) / TICK / 5) * 100));
      lastCpu = cpu;
      const top = workers.errors()[0];
      console.error(
        `  +${Math.round((performance.now() - regT0) / 1000)} s: ${workers.registered.size}/${N} registered and watching; load ${loadAverage()}; etcd CPU % ${etcdPct.join(",")}${top ? `; errors ×${top[1]}: ${top[0]}` : ""}`,
      );
    }, 5000);
    workers.send({ type: "start", rampMs: rampSeconds * 1000 });
    const allRegistered = await waitFor(() => workers.registered.size >= N, registerTimeoutS * 1000);
    clearInterval(progress);
    const regT1 = performance.now();
    const regSeconds = (regT1 - regT0) / 1000;
    const regCpu1 = etcdCpuTicks(cluster);
    const regPerMember = [...workers.registered.values()];
    const records = Number(await admin.getAll().prefix(KEYS.nodes).count().catch(() => -1));
    // Every member reported registered has its watch (both in one tick); let the last settle.
    await sleep(2000);
    // Each voter's own id and the leader's, from its metrics (no gRPC call that a busy process could miss).
    const leader = await leaderIndex(cluster);
    const leaderPid = cluster.members[leader]!.proc.pid!;
    const statsReg = await workers.stats();
    const connections = clientConnections(cluster);
    const watchInfo = await watchersOnLeader(cluster, leader);

    // ---- steady state
    const st0 = { cpu: etcdCpuTicks(cluster), grpc: await grpcReceived(cluster), t: performance.now() };
    await sleep(steadySeconds * 1000);
    const steadyStats = await workers.stats();
    const st1 = { cpu: etcdCpuTicks(cluster), grpc: await grpcReceived(cluster), t: performance.now() };
    const steadyS = (st1.t - st0.t) / 1000;
    const perSecond = Object.fromEntries([...st1.grpc].map(([k, v]) => [k, r1((v - (st0.grpc.get(k) ?? 0)) / steadyS)]).filter(([, v]) => (v as number) > 0));
    const steadyLeaderCpu = r1(((st1.cpu[leader]! - st0.cpu[leader]!) / TICK / steadyS) * 100);
    const steadyAllEtcdCpu = r1(((sum(st1.cpu) - sum(st0.cpu)) / TICK / steadyS) * 100);
    const simCpu = r1((sum(steadyStats.map((x) => x.cpuMicros)) / 1e6 / steadyS) * 100);
    const loopDelay = { p99Ms: r1(Math.max(...steadyStats.map((x) => x.loopP99Ms))), maxMs: r1(Math.max(...steadyStats.map((x) => x.loopMaxMs))) };
    const leaderRssMb = r1(procStat(leaderPid).rssKb / 1024);

    // ---- config changes
    const samples: number[] = [];
    const writeMs: number[] = [];
    const perChange: { writeMs: number; reached: number; p99Ms: number | null; maxMs: number | null }[] = [];
    let changeFailures = 0;
    const chCpu0 = etcdCpuTicks(cluster);
    const chT0 = performance.now();
    for (let c = 0; c < changes; c++) {
      const value = `v${c}-${Date.now()}`;
      // The workers learn the value first (they only match it), then the write: t0 is just before it.
      workers.probe = { value, t0: 0, got: new Map() };
      workers.send({ type: "probe", value });
      await sleep(200);
      workers.probe.t0 = wallNow();
      const t0 = performance.now();
      // As `config set` does it, tried up to 3 times (a loaded cluster may not answer in 5 s);
      // a change never written counts as reaching no member.
      let written = false;
      for (let attempt = 1; attempt <= 3 && !written; attempt++) {
        try {
          await updateKvMapping(admin, (m) => ({ ...m, [PROBE_KEY]: value }), 5000);
          written = true;
        } catch (e) {
          console.error(`  config change ${c + 1}, attempt ${attempt}: ${brief(e)}`);
        }
      }
      const w = performance.now() - t0;
      writeMs.push(w);
      if (!written) {
        changeFailures++;
        perChange.push({ writeMs: r1(w), reached: 0, p99Ms: null, maxMs: null });
        workers.probe = undefined;
        continue;
      }
      await waitFor(() => workers.probe!.got.size >= N, 10_000, 10);
      const xs = [...workers.probe.got.values()];
      samples.push(...xs);
      const s = summarize(xs, N);
      perChange.push({ writeMs: r1(w), reached: xs.length, p99Ms: s.p99Ms, maxMs: s.maxMs });
      workers.probe = undefined;
      await sleep(changeGapSeconds * 1000);
    }
    const changeStats = await workers.stats();
    const chS = (performance.now() - chT0) / 1000;
    const chCpu1 = etcdCpuTicks(cluster);
    const changeLoopDelay = { p99Ms: r1(Math.max(...changeStats.map((x) => x.loopP99Ms))), maxMs: r1(Math.max(...changeStats.map((x) => x.loopMaxMs))) };
    const propagation = summarize(samples, N * changes);

    const gone = Number(await admin.getAll().prefix(KEYS.gone).count().catch(() => -1));
    const memberErrors = sum(workers.membersWithErrors);
    admin.close();

    const rssReg = sum(statsReg.map((x) => x.rss));
    const heapReg = sum(statsReg.map((x) => x.heapUsed));
    const rssBase = sum(statsBase.map((x) => x.rss));
    const heapBase = sum(statsBase.map((x) => x.heapUsed));
    const errorsTop = workers.errors().slice(0, 5);
    const result = {
      bench: "sim-members",
      members: N,
      voters: VOTERS,
      etcd: etcdVersion,
      processes: WORKERS,
      cores: availableParallelism(),
      rampSeconds,
      config: { keys: Object.keys(cache).length, bytes: Object.entries(cache).reduce((a, [k, v]) => a + k.length + v.length, 0) },
      registration: {
        allRegistered,
        totalS: Math.round(regSeconds * 100) / 100,
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
        notWritten: changeFailures,
        writeMs: summarize(writeMs),
        propagation,
        perChange,
        leaderCpuPercent: r1(((chCpu1[leader]! - chCpu0[leader]!) / TICK / chS) * 100),
        eventLoopDelay: changeLoopDelay,
      },
      memory: {
        rssMb: mb(rssReg),
        heapUsedMb: mb(heapReg),
        perMemberRssKb: r1((rssReg - rssBase) / 1024 / N),
        perMemberHeapKb: r1((heapReg - heapBase) / 1024 / N),
      },
      errors: { membersWithErrors: memberErrors, top: errorsTop },
      goneMarksLeft: gone,
    };

    const t = new Table({ head: ["figure", "value"] });
    const f = (s: { p50Ms: number | null; p99Ms: number | null; maxMs: number | null }) => `p50 ${s.p50Ms} / p99 ${s.p99Ms} / max ${s.maxMs} ms`;
    t.push(
      ["members / voters / etcd", `${N} / ${VOTERS} / ${etcdVersion} (${WORKERS} simulating process(es), ${result.cores} cores)`],
      ["shared config", `${result.config.keys} keys, ${r1(result.config.bytes / 1024)} KB`],
      ["registration: all N records", `${result.registration.totalS} s (${records} records${allRegistered ? "" : ", NOT ALL"})`],
      ["registration: per member", f(result.registration.perMember)],
      ["registration: leader etcd CPU", `${result.registration.leaderCpuPercent} %`],
      ["config change → every copy", `${f(propagation)}; within 1 s: ${(propagation.within1s * 100).toFixed(1)} % (${propagation.missing} missing); goal 99 % within 1 s`],
      ["config change: write (updateKvMapping)", `${f(result.configChange.writeMs)}${changeFailures ? `; ${changeFailures} of ${changes} not written` : ""}`],
      ["steady: leader etcd CPU / all etcd", `${steadyLeaderCpu} % / ${steadyAllEtcdCpu} %`],
      ["steady: leader etcd RSS", `${leaderRssMb} MB`],
      ["steady: gRPC msgs/s (all voters)", Object.entries(perSecond).map(([k, v]) => `${k} ${v}`).join(", ")],
      ["client connections / watchers on leader", `${connections} / ${watchInfo.watchers} in ${watchInfo.watchStreams} streams`],
      ["simulators: CPU / event-loop delay p99 (worst worker)", `${simCpu} % / ${loopDelay.p99Ms} ms (changes: p99 ${changeLoopDelay.p99Ms}, max ${changeLoopDelay.maxMs} ms)`],
      ["memory: simulators' RSS / heap", `${result.memory.rssMb} / ${result.memory.heapUsedMb} MB`],
      ["memory per member: RSS / heap", `${result.memory.perMemberRssKb} / ${result.memory.perMemberHeapKb} KB`],
      ["members with errors / gone marks left", `${memberErrors} / ${gone}`],
    );
    console.log(t.toString());
    for (const [e, n] of errorsTop) console.log(`  error ×${n}: ${e}`);
    console.log(JSON.stringify(result));
  } finally {
    await workers.stop();
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
