/**
 * Benchmark: cluster formation at scale, then the agent's footprint at rest. For each size N
 * (`--sizes`, default 10,25,50): a fresh lab of N nodes on one L2 segment; n0 bootstraps, the
 * others are prepared (identity, registration on n0, config copy, `advertise`) `--prepare-concurrency`
 * at a time — the registration of all of them in one KV update (LabCluster.prepareMany), or with
 * `--inject-one-by-one` one `inject --key` process on n0 each (LabCluster.prepare) — and meshed (`mesh --no-after-mesh`) `--mesh-concurrency` at a
 * time, each node's mesh starting as soon as it is prepared; `members` on n0 is polled until it
 * shows N alive. Goal for 50 nodes: ≤ 120 s. Then the cluster settles `--settle-seconds` (10) and
 * sits `--rest-seconds` (30) while the CPU time of each agent and each yggdrasil is sampled; RSS
 * and PSS (/proc/<pid>/smaps_rollup) are read at the end. The members run the yggdrasil and etcd
 * found on their PATH: RAPTIFORMICA_LAB_PATH puts other builds first (README, "Benchmarks"). The agent logs of every node are scanned for
 * restarts and repeated warnings. Each lab is destroyed after it is measured. Over the same rest
 * window: the watch events the voters' etcd sent (`etcd_debugging_mvcc_events_total` from each
 * member's local endpoint's /metrics, read with curl), per minute, and per member; the Txn
 * requests the voters served (each agent config read is one).
 *
 *   node --import tsx bench/scale.ts [--sizes 10,25,50] [--prepare-concurrency 6] [--mesh-concurrency 50] [--inject-one-by-one]
 *        [--form-timeout S] [--settle-seconds 10] [--rest-seconds 30] [--keep-logs DIR]
 *
 * While forming, the lab's processes are counted every second by kind (agents, yggdrasil, etcd,
 * grpc-proxy, hook processes `members --rejoin`, other CLI processes) with the load average,
 * and their CPU time summed by kind (CpuByKind: where a small machine's CPU goes while forming).
 * If a size does not form, agents died, or not all are alive at rest, every node's agent.log (and n0's etcd.log) is copied
 * to `--keep-logs` (default /tmp/raptiformica-bench-scale-logs/n<N>-<lab id>/).
 *
 * Needs root, yggdrasil and etcd; `npm run build` first. Prints a table and a JSON line.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab } from "../test/lab/index.ts";
import { pidsInNamespaces } from "../test/lab/netns.ts";
import { LabCluster, pool } from "../test/helpers/cluster.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { agentPid, brief, foreignLabProcesses, labStack, loadAverage, max, median, numOpt, procStat, sec, sleep, strOpt, tailLines, TICK, yggdrasilPid } from "./lib/common.ts";

const sizes = strOpt("--sizes", "10,25,50").split(",").map(Number);
const prepareConcurrency = numOpt("--prepare-concurrency", 6);
const meshConcurrency = numOpt("--mesh-concurrency", 50);
/** One `inject` process on n0 per node (the operator's way) instead of one bulk registration. */
const oneByOne = process.argv.includes("--inject-one-by-one");
const formTimeoutOpt = numOpt("--form-timeout", 0);
const settleSeconds = numOpt("--settle-seconds", 10);
const restSeconds = numOpt("--rest-seconds", 30);
/** Where the agent logs of a size that did not form (or lost agents) are copied before the lab goes. */
const keepLogs = strOpt("--keep-logs", "/tmp/raptiformica-bench-scale-logs");

if (!existsSync(join(ROOT, "dist", "raptiformica.mjs"))) {
  console.error("run `npm run build` first: the lab runs bin/raptiformica → dist/");
  process.exit(2);
}

interface ProcessFootprint {
  pid: number | null;
  rssMb: number | null;
  pssMb: number | null;
  cpuPercent: number | null;
}

/** The agent's figures at the top level (as before), its yggdrasil's beside them. */
interface NodeFootprint extends ProcessFootprint {
  node: string;
  yggdrasil: ProcessFootprint;
}

interface LogFinding {
  /** Nodes whose agent.log says "agent started" more than once. */
  agentRestarts: Record<string, number>;
  /** Most frequent normalised lines across all agent logs (informational lines excluded). */
  topLines: { line: string; count: number; nodes: number }[];
  linesTotal: number;
}

interface SizeResult {
  nodes: number;
  labCreateS: number;
  bootstrapS: number | null;
  allPreparedS: number | null;
  allMeshReturnedS: number | null;
  allAliveS: number | null;
  formTimeoutS: number;
  /** [seconds, alive count, quorum] whenever one of them changes, as `members` on n0 answered. */
  aliveTimeline: [number, number, boolean][];
  /** Every second while forming: seconds, 1-min load, processes of the lab by kind. */
  processSamples: { t: number; load: number; counts: Record<string, number> }[];
  /** CPU seconds of the lab's processes by kind while forming (CpuByKind). */
  cpuSecondsByKind?: Record<string, number>;
  /** Nodes whose agent process is gone at the end, with the log line that says why if any. */
  deadAgents: { node: string; why: string }[];
  logsKept?: string;
  prepareFailures: string[];
  meshFailures: string[];
  meshSeconds: { median: number | null; max: number | null };
  notAlive: { node: string; status: string; agentLogTail: string[] }[];
  roles: Record<string, number>;
  footprint: NodeFootprint[];
  rss: { medianMb: number | null; maxMb: number | null };
  pss: { medianMb: number | null; maxMb: number | null };
  cpu: { medianPercent: number | null; maxPercent: number | null };
  yggdrasilRss: { medianMb: number | null; maxMb: number | null };
  yggdrasilCpu: { medianPercent: number | null; maxPercent: number | null };
  logs: LogFinding | null;
  /** Watch events sent by all etcd servers of the lab over the rest window, per minute; per member (÷ N). */
  watchEventsPerMinute: number | null;
  watchEventsPerMemberPerMinute: number | null;
  /** Txn requests the voters served over the rest window, per minute (config reads, record checks, …). */
  txnsPerMinute: number | null;
  loadBefore: string;
  loadAfterForming: string;
  error?: string;
}

/**
 * Since node i's etcd server started: the watch events it sent and the Txn requests it served
 * (the agents' config reads are one Txn each; a proxy member's come through its grpc-proxy);
 * zeros for a grpc-proxy, undefined when /metrics cannot be read.
 */
async function etcdCounters(lab: Lab, i: number): Promise<{ events: number; txns: number } | undefined> {
  const tls = join(lab.nodes[i]!.cacheDir, "node", "etcd", "tls");
  const r = await lab
    .exec(i, ["curl", "-sS", "--http1.1", "--max-time", "5", "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "https://127.0.0.1:2379/metrics"], { timeoutMs: 10_000 })
    .catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  const m = /^etcd_debugging_mvcc_events_total (\S+)$/m.exec(r.stdout);
  if (!m) return { events: 0, txns: 0 };
  const txns = [...r.stdout.matchAll(/^grpc_server_handled_total\{[^}]*grpc_method="Txn"[^}]*\} (\S+)$/gm)].reduce((a, t) => a + Number(t[1]), 0);
  return { events: Number(m[1]), txns };
}

/** etcdCounters of every node; undefined when any cannot be read. */
async function labEtcdCounters(lab: Lab): Promise<{ events: number; txns: number }[] | undefined> {
  const all = await Promise.all(lab.nodes.map((_, i) => etcdCounters(lab, i)));
  return all.some((x) => x === undefined) ? undefined : (all as { events: number; txns: number }[]);
}

/** What the counters grew by, summed over the nodes; a node whose counter went down restarted its etcd (or became a voter) in between: its count since then. */
function counterGrowth(before: readonly { events: number; txns: number }[], after: readonly { events: number; txns: number }[]): { events: number; txns: number } {
  const grow = (b: number, a: number) => (a >= b ? a - b : a);
  return after.reduce((sum, a, i) => ({ events: sum.events + grow(before[i]!.events, a.events), txns: sum.txns + grow(before[i]!.txns, a.txns) }), { events: 0, txns: 0 });
}

const normalise = (l: string) =>
  l
    .replace(/\[[0-9a-f:]+\]/gi, "[ADDR]")
    .replace(/\b[0-9a-f]{16,}\b/gi, "KEY")
    .replace(/\b\d+(\.\d+)*\b/g, "N")
    .replace(/https:\/\/\S+/g, "URL")
    .slice(0, 160);

const BORING = /^(agent started|yggdrasil started|etcd grpc-proxy (started|restarted)|joining etcd as a learner|Warning: disabling flag --expose_wasm)/;

function scanLogs(lab: Lab): LogFinding {
  const counts = new Map<string, { count: number; nodes: Set<string> }>();
  const agentRestarts: Record<string, number> = {};
  let linesTotal = 0;
  for (const n of lab.nodes) {
    const path = join(n.cacheDir, "node", "log", "agent.log");
    if (!existsSync(path)) continue;
    // The agent stamps each line with its time: dropped, so equal messages count together.
    const lines = readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => l.replace(/^\S+Z /, ""));
    linesTotal += lines.length;
    const starts = lines.filter((l) => l.startsWith("agent started")).length;
    if (starts > 1) agentRestarts[n.name] = starts;
    for (const l of lines) {
      if (BORING.test(l)) continue;
      const k = normalise(l);
      const e = counts.get(k) ?? { count: 0, nodes: new Set<string>() };
      e.count++;
      e.nodes.add(n.name);
      counts.set(k, e);
    }
  }
  const topLines = [...counts.entries()]
    .sort((a, b) => b[1].count - a[1].count)
    .slice(0, 8)
    .map(([line, e]) => ({ line, count: e.count, nodes: e.nodes.size }));
  return { agentRestarts, topLines, linesTotal };
}

/** What a lab process is, from its command line. */
function kindOf(cmd: string): string {
  return /^(\S*\/)?sh \S*raptiformica-agent-keeper /.test(cmd)
    ? "agent keeper"
    : / agent\s*$/.test(cmd)
    ? "agent"
    : /^(\S*\/)?yggdrasil /.test(cmd)
      ? "yggdrasil"
      : /grpc-proxy/.test(cmd)
        ? "grpc-proxy"
        : /^(\S*\/)?etcd /.test(cmd)
          ? "etcd"
          : /members --rejoin/.test(cmd)
            ? "hook: members --rejoin"
            : /raptiformica\.mjs/.test(cmd)
              ? "other CLI"
              : /^(sh|ip) /.test(cmd)
                ? "sh/ip"
                : "other";
}

/** Each live process of the lab with its kind and CPU ticks: its own, and those of the children it reaped (cutime + cstime). */
function labProcesses(lab: Lab): { pid: number; kind: string; own: number; reaped: number }[] {
  const out: { pid: number; kind: string; own: number; reaped: number }[] = [];
  for (const pids of pidsInNamespaces(lab.nodes.map((x) => x.ns)).values()) {
    for (const pid of pids) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        out.push({ pid, kind: kindOf(cmd), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

/**
 * CPU seconds of the lab's processes by kind while forming, summed over samples: a live
 * process's own time goes to its kind; the time of children it waited for goes to "reaped by
 * <kind>" — hook and CLI processes that started and ended between two samples (an agent's
 * `members --rejoin` hooks) would be missed otherwise. A process that ends between samples loses
 * its last slice unless its parent in the lab reaps it.
 */
class CpuByKind {
  private last = new Map<number, { own: number; reaped: number }>();
  readonly seconds: Record<string, number> = {};

  sample(procs: readonly { pid: number; kind: string; own: number; reaped: number }[]): void {
    const next = new Map<number, { own: number; reaped: number }>();
    for (const p of procs) {
      const before = this.last.get(p.pid) ?? { own: 0, reaped: 0 };
      this.add(p.kind, p.own - before.own);
      this.add(`reaped by ${p.kind}`, p.reaped - before.reaped);
      next.set(p.pid, { own: p.own, reaped: p.reaped });
    }
    this.last = next;
  }

  private add(kind: string, ticks: number): void {
    if (ticks > 0) this.seconds[kind] = Math.round(((this.seconds[kind] ?? 0) + ticks / TICK) * 10) / 10;
  }
}

/** The lab's processes by kind. */
function processCounts(procs: readonly { kind: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of procs) counts[p.kind] = (counts[p.kind] ?? 0) + 1;
  return counts;
}

/** Nodes whose agent is not running, and the first line of its log that says why (a V8 fatal error, ...). */
function deadAgents(lab: Lab): { node: string; why: string }[] {
  const out: { node: string; why: string }[] = [];
  lab.nodes.forEach((node, i) => {
    if (agentPid(lab, i) !== undefined) return;
    let why = "no agent process";
    try {
      const log = readFileSync(join(node.cacheDir, "node", "log", "agent.log"), "utf8").split("\n");
      const fatal = log.find((l) => /FATAL ERROR|out of memory|Uncaught|Error:/.test(l) && !/^(\S+Z )?warning:/.test(l));
      if (fatal) why = fatal.trim().slice(0, 200);
    } catch {
      // no log
    }
    out.push({ node: node.name, why });
  });
  return out;
}

function keepAgentLogs(lab: Lab, n: number): string {
  const dir = join(keepLogs, `n${n}-${lab.id}`);
  mkdirSync(dir, { recursive: true });
  for (const node of lab.nodes) {
    const logDir = join(node.cacheDir, "node", "log");
    for (const f of node.index === 0 ? ["agent.log", "etcd.log"] : ["agent.log"]) {
      try {
        copyFileSync(join(logDir, f), join(dir, `${node.name}-${f}`));
      } catch {
        // not there
      }
    }
  }
  return dir;
}

async function measure(n: number): Promise<SizeResult> {
  const formTimeoutS = formTimeoutOpt > 0 ? formTimeoutOpt : Math.max(180, n * 6);
  const loadBefore = loadAverage();
  const lab = await Lab.create({ nodes: n, topology: "full" });
  const res: SizeResult = {
    nodes: n,
    labCreateS: sec(lab.createMs),
    bootstrapS: null,
    allPreparedS: null,
    allMeshReturnedS: null,
    allAliveS: null,
    formTimeoutS,
    aliveTimeline: [],
    processSamples: [],
    deadAgents: [],
    prepareFailures: [],
    meshFailures: [],
    meshSeconds: { median: null, max: null },
    notAlive: [],
    roles: {},
    footprint: [],
    rss: { medianMb: null, maxMb: null },
    pss: { medianMb: null, maxMb: null },
    cpu: { medianPercent: null, maxPercent: null },
    yggdrasilRss: { medianMb: null, maxMb: null },
    yggdrasilCpu: { medianPercent: null, maxPercent: null },
    logs: null,
    watchEventsPerMinute: null,
    watchEventsPerMemberPerMinute: null,
    txnsPerMinute: null,
    loadBefore,
    loadAfterForming: "",
  };
  try {
    const c = new LabCluster(lab);
    const t0 = performance.now();
    const since = () => sec(performance.now() - t0);
    await c.first(0);
    res.bootstrapS = since();
    console.error(`  n=${n}: n0 bootstrapped at ${res.bootstrapS} s`);

    // members on n0, polled about once a second until N alive or the timeout.
    let stopPolling = false;
    let lastMembers: { name: string; status: string; role?: string }[] = [];
    let sampling = true;
    const cpu = new CpuByKind();
    res.cpuSecondsByKind = cpu.seconds;
    const sampler = (async () => {
      while (sampling) {
        const procs = labProcesses(lab);
        cpu.sample(procs);
        res.processSamples.push({ t: since(), load: Number(loadAverage().split(" ")[0]), counts: processCounts(procs) });
        await sleep(1000);
      }
    })();
    const poller = (async () => {
      let lastAlive = -1;
      let lastQuorum: boolean | undefined;
      while (!stopPolling && performance.now() - t0 < formTimeoutS * 1000) {
        try {
          const m = await c.members(0);
          lastMembers = m.members;
          const alive = m.members.filter((x) => x.status === "alive").length;
          if (alive !== lastAlive || m.quorum !== lastQuorum) {
            res.aliveTimeline.push([since(), alive, m.quorum]);
            lastAlive = alive;
            lastQuorum = m.quorum;
          }
          if (alive >= n) {
            res.allAliveS = since();
            return;
          }
        } catch {
          // not answering this time
        }
        await sleep(1000);
      }
    })();

    const others = Array.from({ length: n - 1 }, (_, k) => k + 1);
    const meshTimes: number[] = [];
    let prepared = 0;
    const meshQueue: Promise<void>[] = [];
    let meshInFlight = 0;
    const meshWaiters: (() => void)[] = [];
    const mesh = async (i: number) => {
      while (meshInFlight >= meshConcurrency) await new Promise<void>((r) => meshWaiters.push(r));
      meshInFlight++;
      const s = performance.now();
      try {
        const r = await c.rf(i, ["mesh", "--no-after-mesh", "--timeout", String(formTimeoutS)], (formTimeoutS + 30) * 1000);
        meshTimes.push(performance.now() - s);
        if (r.exitCode !== 0) res.meshFailures.push(`n${i}: exit ${r.exitCode}${r.timedOut ? " (timed out)" : ""}: ${r.stderr.trim().split("\n").slice(-2).join(" | ").slice(0, 300)}`);
      } finally {
        meshInFlight--;
        meshWaiters.shift()?.();
      }
    };
    const failed = (i: number | string, e: unknown) => res.prepareFailures.push(`n${i}: ${(e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").slice(0, 400)}`);
    if (oneByOne) {
      await pool(others, prepareConcurrency, async (i) => {
        try {
          await c.prepare(i);
          prepared++;
          meshQueue.push(mesh(i));
        } catch (e) {
          failed(i, e);
        }
      });
    } else {
      await c
        .prepareMany(others, prepareConcurrency, (i) => {
          prepared++;
          meshQueue.push(mesh(i));
        })
        .catch((e: unknown) => failed("*", e));
    }
    res.allPreparedS = since();
    console.error(`  n=${n}: ${prepared}/${n - 1} prepared at ${res.allPreparedS} s`);
    await Promise.all(meshQueue);
    res.allMeshReturnedS = since();
    console.error(`  n=${n}: every mesh returned at ${res.allMeshReturnedS} s (${res.meshFailures.length} failed)`);
    await poller;
    stopPolling = true;
    sampling = false;
    await sampler;
    res.loadAfterForming = loadAverage();
    res.meshSeconds = { median: meshTimes.length ? sec(median(meshTimes)!) : null, max: meshTimes.length ? sec(max(meshTimes)!) : null };
    console.error(`  n=${n}: ${res.allAliveS !== null ? `all alive at ${res.allAliveS} s` : `NOT all alive after ${formTimeoutS} s (${JSON.stringify(res.aliveTimeline.slice(-1))})`}`);

    // Who is not alive, and what their agents say.
    try {
      lastMembers = (await c.members(0)).members;
    } catch {
      // keep the last answer
    }
    const shown = new Map(lastMembers.map((m) => [m.name, m]));
    for (const node of lab.nodes) {
      const m = shown.get(node.name);
      if (m?.status !== "alive") {
        res.notAlive.push({ node: node.name, status: m?.status ?? "absent", agentLogTail: tailLines(join(node.cacheDir, "node", "log", "agent.log"), 6) });
      }
    }

    // At rest.
    await sleep(settleSeconds * 1000);
    const agents = lab.nodes.map((_, i) => agentPid(lab, i));
    const yggs = lab.nodes.map((_, i) => yggdrasilPid(lab, i));
    const statOf = (p: number | undefined) => {
      try {
        return p === undefined ? undefined : procStat(p);
      } catch {
        return undefined;
      }
    };
    const before = [...agents, ...yggs].map(statOf);
    const eventsBefore = await labEtcdCounters(lab);
    const t1 = performance.now();
    await sleep(restSeconds * 1000);
    const elapsed = (performance.now() - t1) / 1000;
    const eventsAfter = await labEtcdCounters(lab);
    if (eventsBefore !== undefined && eventsAfter !== undefined) {
      const g = counterGrowth(eventsBefore, eventsAfter);
      res.watchEventsPerMinute = Math.round((g.events / elapsed) * 60);
      res.watchEventsPerMemberPerMinute = Math.round((g.events / elapsed / n) * 600) / 10;
      res.txnsPerMinute = Math.round((g.txns / elapsed) * 60);
    }
    const footprintOf = (p: number | undefined, b: ReturnType<typeof statOf>): ProcessFootprint => {
      const a = statOf(p);
      if (p === undefined || b === undefined || a === undefined) return { pid: p ?? null, rssMb: null, pssMb: null, cpuPercent: null };
      return {
        pid: p,
        rssMb: Math.round((a.rssKb / 1024) * 10) / 10,
        pssMb: Math.round((a.pssKb / 1024) * 10) / 10,
        cpuPercent: Math.round(((a.cpuTicks - b.cpuTicks) / TICK / elapsed) * 1000) / 10,
      };
    };
    res.footprint = lab.nodes.map((node, i) => ({
      node: node.name,
      ...footprintOf(agents[i], before[i]),
      yggdrasil: footprintOf(yggs[i], before[agents.length + i]),
    }));
    const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
    const vals = (k: "rssMb" | "pssMb" | "cpuPercent") => nums(res.footprint.map((f) => f[k]));
    const yvals = (k: "rssMb" | "cpuPercent") => nums(res.footprint.map((f) => f.yggdrasil[k]));
    const r1 = (x: number | undefined) => (x === undefined ? null : Math.round(x * 10) / 10);
    res.rss = { medianMb: r1(median(vals("rssMb"))), maxMb: r1(max(vals("rssMb"))) };
    res.pss = { medianMb: r1(median(vals("pssMb"))), maxMb: r1(max(vals("pssMb"))) };
    res.cpu = { medianPercent: r1(median(vals("cpuPercent"))), maxPercent: r1(max(vals("cpuPercent"))) };
    res.yggdrasilRss = { medianMb: r1(median(yvals("rssMb"))), maxMb: r1(max(yvals("rssMb"))) };
    res.yggdrasilCpu = { medianPercent: r1(median(yvals("cpuPercent"))), maxPercent: r1(max(yvals("cpuPercent"))) };
    try {
      for (const m of (await c.members(0)).members) {
        const k = `${m.status}/${m.role ?? "-"}`;
        res.roles[k] = (res.roles[k] ?? 0) + 1;
      }
    } catch (e) {
      res.roles["members failed"] = 1;
      res.error = `members after rest: ${brief(e)}`;
    }
    res.logs = scanLogs(lab);
    res.deadAgents = deadAgents(lab);
    const failedAtRest = Object.entries(res.roles).some(([k, v]) => !k.startsWith("alive/") && v > 0);
    if (res.allAliveS === null || res.deadAgents.length > 0 || failedAtRest) res.logsKept = keepAgentLogs(lab, n);
  } catch (e) {
    res.error = brief(e);
    try {
      res.logs = scanLogs(lab);
      res.deadAgents = deadAgents(lab);
      res.logsKept = keepAgentLogs(lab, n);
    } catch {
      // lab gone
    }
  } finally {
    await lab.destroy().catch((e: unknown) => (res.error = `${res.error ?? ""} destroy: ${brief(e)}`));
  }
  return res;
}

const stack = labStack();
const loadAtStart = loadAverage();
const foreignAtStart = foreignLabProcesses([]);
const results: SizeResult[] = [];
for (const n of sizes) {
  console.error(`size ${n} (load ${loadAverage()}, ${foreignLabProcesses([])} processes of other labs)`);
  results.push(await measure(n));
}

const f = (x: number | null, unit = " s") => (x === null ? "-" : `${x}${unit}`);
console.log(
  `Cluster formation at scale (Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}; "full" lab, prepare ×${prepareConcurrency}, mesh ×${meshConcurrency}); load average at start ${loadAtStart}, ${foreignAtStart} processes of other labs running (numbers are noisy)`,
);
console.log(
  ["nodes", "bootstrap", "prepared", "meshed", "N alive", "goal", `agent RSS med/max (MB)`, "PSS med/max (MB)", `CPU % med/max (${restSeconds} s)`, "yggdrasil RSS med/max (MB)", "yggdrasil CPU % med/max"].map((h, k) => (k === 0 ? h.padEnd(5) : h.padStart(k >= 6 ? 26 : 9))).join("  "),
);
for (const r of results) {
  console.log(
    [
      String(r.nodes).padEnd(5),
      f(r.bootstrapS).padStart(9),
      f(r.allPreparedS).padStart(9),
      f(r.allMeshReturnedS).padStart(9),
      (r.allAliveS === null ? `> ${r.formTimeoutS} s` : f(r.allAliveS)).padStart(9),
      (r.nodes === 50 ? "≤ 120 s" : "").padStart(9),
      `${f(r.rss.medianMb, "")} / ${f(r.rss.maxMb, "")}`.padStart(26),
      `${f(r.pss.medianMb, "")} / ${f(r.pss.maxMb, "")}`.padStart(26),
      `${f(r.cpu.medianPercent, "")} / ${f(r.cpu.maxPercent, "")}`.padStart(26),
      `${f(r.yggdrasilRss.medianMb, "")} / ${f(r.yggdrasilRss.maxMb, "")}`.padStart(26),
      `${f(r.yggdrasilCpu.medianPercent, "")} / ${f(r.yggdrasilCpu.maxPercent, "")}`.padStart(26),
    ].join("  "),
  );
}
for (const r of results) {
  console.log(`n=${r.nodes}: roles ${JSON.stringify(r.roles)}; mesh per node median ${f(r.meshSeconds.median)}, max ${f(r.meshSeconds.max)}; load after forming ${r.loadAfterForming}`);
  console.log(`  watch events sent by etcd at rest: ${f(r.watchEventsPerMinute, "/min")} (${f(r.watchEventsPerMemberPerMinute, "/min")} per member)`);
  console.log(`  Txn requests served by the voters at rest: ${f(r.txnsPerMinute, "/min")}`);
  if (r.error) console.log(`  error: ${r.error}`);
  console.log(`  members on n0 over time [s, alive, quorum]: ${JSON.stringify(r.aliveTimeline)}`);
  if (r.cpuSecondsByKind) {
    const total = Object.values(r.cpuSecondsByKind).reduce((a, b) => a + b, 0);
    const parts = Object.entries(r.cpuSecondsByKind).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v} s (${Math.round((v / total) * 100)} %)`);
    console.log(`  CPU while forming by kind, ${Math.round(total)} s in all: ${parts.join(", ")}`);
  }
  const peak = r.processSamples.reduce<(typeof r.processSamples)[number] | undefined>((a, b) => (!a || b.load > a.load ? b : a), undefined);
  if (peak) console.log(`  busiest sample while forming: ${peak.t} s, load ${peak.load}, lab processes ${JSON.stringify(peak.counts)}`);
  const hooks = Math.max(0, ...r.processSamples.map((x) => x.counts["hook: members --rejoin"] ?? 0));
  if (hooks > 0) console.log(`  most \`members --rejoin\` hook processes at once: ${hooks}`);
  for (const d of r.deadAgents) console.log(`  agent dead: ${d.node}: ${d.why}`);
  if (r.logsKept) console.log(`  agent logs kept in ${r.logsKept}`);
  for (const x of r.prepareFailures) console.log(`  prepare failed: ${x}`);
  for (const x of r.meshFailures) console.log(`  mesh failed: ${x}`);
  for (const x of r.notAlive.slice(0, 12)) console.log(`  not alive: ${x.node} (${x.status}); agent.log: ${x.agentLogTail.join(" ⏎ ").slice(0, 400)}`);
  if (r.notAlive.length > 12) console.log(`  … and ${r.notAlive.length - 12} more not alive (in the JSON)`);
  if (r.logs) {
    const restarts = Object.entries(r.logs.agentRestarts);
    if (restarts.length) console.log(`  agents that started more than once: ${restarts.map(([k, v]) => `${k}×${v}`).join(", ")}`);
    for (const l of r.logs.topLines.slice(0, 5)) console.log(`  agent.log ×${l.count} on ${l.nodes} node(s): ${l.line}`);
  }
}
console.log(JSON.stringify({ stack, prepareConcurrency, meshConcurrency, settleSeconds, restSeconds, loadAtStart, foreignLabProcessesAtStart: foreignAtStart, sizes: results }));
