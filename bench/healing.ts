/**
 * Needs `apt-get install serf` (HashiCorp serf, Debian's package) for the failure-detection
 * comparison, and yggdrasil + etcd like every lab benchmark; needs root (network namespaces).
 *
 * Benchmark: how fast the cluster heals, each figure over `--runs` runs (default 3), with its goal:
 *
 *   1. in a 5-node cluster with meshnet/etcd/max_voters 3, a non-leader voter killed
 *      (lab.killNode: SIGKILL of everything in its namespace) shown "failed" by `members`, polled
 *      back to back on the other non-leader voter (the figure) and at the same time on a proxy
 *      node — goal ≤ 0.5× serf's time (medians); beside it HashiCorp serf in the same kind of lab (5 nodes, one L2
 *      segment), `serf members` polled the same way;
 *   2. the same kill: `members` shows 3 alive voters again without it (default
 *      dead_voter_grace) — goal ≤ 10 s;
 *   3. the etcd leader's node killed → the next write that succeeds on a surviving voter, with
 *      `config set` in a tight loop (a whole CLI process per attempt) and with an etcd3 client
 *      running in the survivor's namespace (bench/lib/etcd-writer.ts, a put every 50 ms) —
 *      goal ≤ 3 s; the CLI's own start-up cost on a healthy cluster is printed beside it;
 *   4. that killed node restarted (`raptiformica mesh --no-after-mesh` after `--down-seconds`,
 *      default 5): seconds until a survivor's `ping -6 -c1 -W1 <its mesh address>` succeeds,
 *      from the start of `mesh` and from the start of the agent (a new pid in agent.pid) — goal
 *      ≤ 5 s after the agent starts; beside it bare Yggdrasil (two namespaces, plain
 *      `yggdrasil -useconffile`, A peering to B, B SIGKILLed and started again after the same
 *      down time): once as asked (only A dials B) and once with both dialling each other, as
 *      raptiformica configures it. Polled for up to 120 s.
 *
 *   node --import tsx bench/healing.ts [--runs N] [--down-seconds S] [--only 1,3]
 *
 * The members run the yggdrasil and etcd on their PATH, RAPTIFORMICA_LAB_PATH first (README,
 * "Benchmarks"); the bare Yggdrasil of figure 4 is always the system's.
 *
 * Times are the end of the first poll that saw the state (the start of that poll is in the
 * JSON), so they include one poll's latency: `members` is a whole CLI process. Prints a table
 * and a JSON line.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor } from "../test/lab/index.ts";
import { LabCluster } from "../test/helpers/cluster.ts";
import { BIN, ROOT } from "../test/helpers/cli.ts";
import { agentPid, brief, fmtS, foreignLabProcesses, labStack, healthyVoters, leaderOf, loadAverage, median, numOpt, pollUntil, roles, sec, sleep, strOpt, tailLines, type Roles } from "./lib/common.ts";

const runs = numOpt("--runs", 3);
const downSeconds = numOpt("--down-seconds", 5);
const only = new Set(strOpt("--only", "1,2,3,4").split(",").map(Number));
const POLL_TIMEOUT_MS = 120_000;
const SERF_PORT = 7946;
const YGG_PORT = 7999;

for (const tool of ["ip", "yggdrasil", "etcd", "serf", "ping"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) {
    console.error(`needs ${tool}${tool === "serf" ? " (apt-get install serf)" : ""}`);
    process.exit(2);
  }
}
if (!existsSync(join(ROOT, "dist", "raptiformica.mjs"))) {
  console.error("run `npm run build` first: the lab runs bin/raptiformica → dist/");
  process.exit(2);
}

/** One measured figure of one run: seconds (end of the poll that saw it), or why there is none. */
interface Sample {
  s: number | null;
  /** Start of the poll that saw it (lower bound), seconds. */
  from?: number;
  note?: string;
}

const labIds: string[] = [];
async function newLab(nodes: number): Promise<Lab> {
  const lab = await Lab.create({ nodes, topology: "full" });
  labIds.push(lab.id);
  return lab;
}

async function formCluster(lab: Lab, maxVoters?: number): Promise<LabCluster> {
  const n = lab.nodes.length;
  return new LabCluster(lab).form(n, {
    ...(maxVoters !== undefined ? { config: { "meshnet/etcd/max_voters": String(maxVoters) } } : {}),
    joins: "together",
    aliveTimeoutMs: 120_000,
    voters: Math.min(maxVoters ?? 5, n % 2 === 1 ? n : n - 1),
  });
}

// ---------------------------------------------------------------- 1 + 2: failed, voter replaced

interface Observed {
  observer: string;
  failed: Sample;
  replaced: Sample;
  pollMs?: number;
  pollMaxMs?: number;
  /** Polls whose `members` said the KV does not answer (quorum false / exit 1), and when. */
  noKv: { polls: number; total: number; firstS: number | null; lastS: number | null };
  /** What the last answering poll showed. */
  lastRoles?: Roles;
  /**
   * Each etcd leader the polls showed, in order, with when it was first seen (s after the
   * kill): a new leader extends every lease by its TTL (etcd's lessor Promote), the dead
   * node's too, so an election after the kill delays "failed" by about node_ttl.
   */
  leaders: { name: string; s: number }[];
}

/**
 * Polls `members --json` on `observer` back to back from t0 until 3 healthy voters without the
 * victim are shown: when the victim was first shown failed, when it was replaced, and how many
 * polls got no answer from the KV.
 */
async function observe(c: LabCluster, observer: number, role: string, victimName: string, t0: number): Promise<Observed> {
  let failedAt: { startMs: number; endMs: number } | undefined;
  let lastRoles: Roles | undefined;
  const noKv = { polls: 0, total: 0, firstS: null as number | null, lastS: null as number | null };
  const attemptMs: number[] = [];
  const leaders: { name: string; s: number }[] = [];
  const replaced = await pollUntil(
    t0,
    async () => {
      const s = performance.now();
      const m = await c.members(observer);
      const e = performance.now();
      noKv.total++;
      if (!m.quorum) {
        noKv.polls++;
        noKv.firstS ??= sec(s - t0);
        noKv.lastS = sec(e - t0);
        return false;
      }
      const r: Roles = Object.fromEntries(m.members.map((x) => [x.name, { ...(x.role ? { role: x.role } : {}), status: x.status }]));
      lastRoles = r;
      const leader = Object.entries(r).find(([, v]) => v.role === "leader")?.[0];
      if (leader && leaders.at(-1)?.name !== leader) leaders.push({ name: leader, s: sec(e - t0) });
      if (!failedAt && r[victimName]?.status === "failed") failedAt = { startMs: s - t0, endMs: e - t0 };
      const v = healthyVoters(r);
      return v.length === 3 && !v.includes(victimName);
    },
    { gapMs: 150, timeoutMs: POLL_TIMEOUT_MS, attemptMs },
  );
  return {
    observer: `n${observer} (${role})`,
    failed: failedAt ? { s: sec(failedAt.endMs), from: sec(failedAt.startMs) } : { s: null, note: "> 120 s" },
    replaced: replaced ? { s: sec(replaced.endMs), from: sec(replaced.startMs) } : { s: null, note: "> 120 s" },
    pollMs: attemptMs.length ? Math.round(median(attemptMs)!) : undefined,
    pollMaxMs: attemptMs.length ? Math.round(Math.max(...attemptMs)) : undefined,
    noKv,
    leaders,
    ...(replaced ? {} : { lastRoles }),
  };
}

/**
 * 5 nodes, max_voters 3: a non-leader voter is killed. Asked at the same time on the surviving
 * non-leader voter (the figure) and on a proxy node (whose local grpc-proxy points at the victim too).
 */
/** Figure 1 above this (s): the failure watch did not end the record; its log lines are shown. */
const SLOW_FAILED_S = 3;
/** Figure 2 above this (s): the leader's log tail is shown. */
const SLOW_REPLACED_S = 15;

async function failedAndReplaced(): Promise<{ victim: string; leaderBefore: number; voter: Observed; proxy: Observed | undefined; leaderLogTail?: string[]; watchLog?: string[] }> {
  const lab = await newLab(5);
  try {
    const c = await formCluster(lab, 3);
    await sleep(2000);
    const r0 = await roles(c, 0);
    const leader = leaderOf(r0);
    const voters = Object.entries(r0).filter(([, v]) => v.role === "voter").map(([k]) => k);
    const proxyName = Object.entries(r0).find(([, v]) => v.role === "proxy")?.[0];
    if (voters.length !== 2 || leader === undefined) throw new Error(`expected a leader and 2 voters: ${JSON.stringify(r0)}`);
    const [victimName, otherVoter] = voters as [string, string];
    const t0 = performance.now();
    await lab.killNode(Number(victimName.slice(1)));
    const [voter, proxy] = await Promise.all([
      observe(c, Number(otherVoter.slice(1)), "voter", victimName, t0),
      proxyName ? observe(c, Number(proxyName.slice(1)), "proxy", victimName, t0) : Promise.resolve(undefined),
    ]);
    // Not replaced: what the leader's agent said (its voter manager does the replacing).
    const leaderLogTail = voter.replaced.s === null || voter.replaced.s > SLOW_REPLACED_S ? tailLines(join(lab.nodes[leader]!.cacheDir, "node", "log", "agent.log"), 40) : undefined;
    // Slow to show failed (the voters' failure watch did not end the record): what the
    // surviving voters' watches said.
    const watchLog = voter.failed.s === null || voter.failed.s > SLOW_FAILED_S
      ? [leader, Number(otherVoter.slice(1))].flatMap((i) => tailLines(join(lab.nodes[i]!.cacheDir, "node", "log", "agent.log"), 400).filter((l) => /failure watch|record is ended/.test(l)).slice(-8).map((l) => `n${i}: ${l}`))
      : undefined;
    return { victim: victimName, leaderBefore: leader, voter, proxy, ...(leaderLogTail ? { leaderLogTail } : {}), ...(watchLog ? { watchLog } : {}) };
  } finally {
    await lab.destroy();
  }
}

// ---------------------------------------------------------------- 1': serf

async function serfFailed(): Promise<{ failed: Sample; pollMs?: number }> {
  const lab = await newLab(5);
  try {
    for (let i = 0; i < 5; i++) {
      lab.spawn(i, ["serf", "agent", "-node", `n${i}`, "-bind", `${lab.addressOf(i)}:${SERF_PORT}`, "-rpc-addr", "127.0.0.1:7373", "-log-level", "warn"], {
        label: "serf",
      });
    }
    const serfMembers = async (i: number): Promise<Record<string, string>> => {
      const r = await lab.exec(i, ["serf", "members", "-rpc-addr", "127.0.0.1:7373", "-format", "json"], { timeoutMs: 10_000 });
      if (r.exitCode !== 0) throw new Error(r.stderr);
      const m = JSON.parse(r.stdout) as { members: { name: string; status: string }[] };
      return Object.fromEntries(m.members.map((x) => [x.name, x.status]));
    };
    await waitFor("serf agents up", async () => (await Promise.all([0, 1, 2, 3, 4].map(serfMembers))).length === 5, { timeoutMs: 30_000, intervalMs: 200 });
    for (let i = 1; i < 5; i++) {
      const r = await lab.exec(i, ["serf", "join", "-rpc-addr", "127.0.0.1:7373", `${lab.addressOf(0)}:${SERF_PORT}`]);
      if (r.exitCode !== 0) throw new Error(`serf join on n${i}: ${r.stderr}${r.stdout}`);
    }
    await waitFor(
      "5 alive in serf",
      async () => {
        const all = await Promise.all([0, 1, 2, 3, 4].map(serfMembers));
        return all.every((m) => Object.values(m).filter((s) => s === "alive").length === 5);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    await sleep(2000);
    const victim = 2;
    const observer = 1;
    const t0 = performance.now();
    await lab.killNode(victim);
    const r = await pollUntil(t0, async () => (await serfMembers(observer))[`n${victim}`] === "failed", { gapMs: 150, timeoutMs: POLL_TIMEOUT_MS });
    return {
      failed: r ? { s: sec(r.endMs), from: sec(r.startMs) } : { s: null, note: "> 120 s" },
      pollMs: r ? Math.round(median(r.attemptMs)!) : undefined,
    };
  } finally {
    await lab.destroy();
  }
}

// ---------------------------------------------------------------- 3 + 4: leader killed, restarted

interface WriterLine {
  start?: number;
  end?: number;
  ok?: boolean;
  err?: string;
  ready?: number;
}

function writerLines(path: string): WriterLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as WriterLine);
}

async function pingOnce(lab: Lab, from: number, addr: string): Promise<boolean> {
  const r = await lab.exec(from, ["ping", "-6", "-c1", "-W1", addr], { timeoutMs: 5_000 });
  return r.exitCode === 0;
}

/**
 * Launches `ping -6 -c1 -W1` every `everyMs` (at most `maxInFlight` outstanding) until one
 * answers; resolves with that ping's start and end (ms since t0), or undefined after timeoutMs.
 */
function pingUntil(lab: Lab, from: number, addr: string, t0: number, opts = { everyMs: 100, maxInFlight: 8, timeoutMs: POLL_TIMEOUT_MS }) {
  return new Promise<{ startMs: number; endMs: number } | undefined>((resolve) => {
    let inFlight = 0;
    let done = false;
    const finish = (v: { startMs: number; endMs: number } | undefined) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      resolve(v);
    };
    const timer = setInterval(() => {
      if (performance.now() - t0 > opts.timeoutMs) return finish(undefined);
      if (inFlight >= opts.maxInFlight) return;
      inFlight++;
      const s = performance.now();
      pingOnce(lab, from, addr)
        .then((ok) => {
          if (ok) finish({ startMs: s - t0, endMs: performance.now() - t0 });
        })
        .catch(() => undefined)
        .finally(() => inFlight--);
    }, opts.everyMs);
  });
}

interface LeaderRun {
  cli: Sample;
  inProcess: Sample;
  cliAttempts?: number;
  cliStartupS?: number;
  cliHealthySetS?: number;
  ping: { fromMesh: Sample; fromAgent: Sample; meshReturnedS?: number | null; downS?: number };
}

async function leaderKilled(doWrites: boolean, doRestart: boolean): Promise<LeaderRun> {
  const lab = await newLab(3);
  try {
    const c = await formCluster(lab);
    await sleep(2000);
    const r0 = await roles(c, 0);
    const leader = leaderOf(r0);
    if (leader === undefined) throw new Error(`no leader: ${JSON.stringify(r0)}`);
    const [s] = [0, 1, 2].filter((i) => i !== leader) as [number];
    const leaderAddr = (await c.identity(leader)).meshAddress;
    if (!(await pingOnce(lab, s, leaderAddr))) throw new Error(`n${s} cannot ping the leader's mesh address before the fault`);

    const out: LeaderRun = { cli: { s: null, note: "not measured" }, inProcess: { s: null, note: "not measured" }, ping: { fromMesh: { s: null }, fromAgent: { s: null } } };
    const writerLog = join(lab.nodes[s]!.dir, "logs", "etcd-writer.log");
    if (doWrites) {
      // The CLI's own cost on a healthy cluster: start-up alone, and a whole successful write.
      const startup: number[] = [];
      const healthySet: number[] = [];
      for (let k = 0; k < 3; k++) {
        let t = performance.now();
        await c.rfOk(s, ["--version"]);
        startup.push(performance.now() - t);
        t = performance.now();
        await c.rfOk(s, ["config", "set", "bench/healing/cli", `warm-${k}`]);
        healthySet.push(performance.now() - t);
      }
      out.cliStartupS = sec(median(startup)!);
      out.cliHealthySetS = sec(median(healthySet)!);
      lab.spawn(
        s,
        ["node", "--import", "tsx", join(ROOT, "bench", "lib", "etcd-writer.ts"), "--tls-dir", join(lab.nodes[s]!.cacheDir, "node", "etcd", "tls"), "--seconds", "150"],
        { label: "etcd-writer", cwd: ROOT },
      );
      await waitFor("the etcd writer's puts succeed", () => writerLines(writerLog).filter((l) => l.ok).length >= 5, { timeoutMs: 30_000, intervalMs: 200 });
    }

    const killEpoch = Date.now();
    const t0 = performance.now();
    await lab.killNode(leader);

    if (doWrites) {
      let n = 0;
      const r = await pollUntil(
        t0,
        async () => {
          const res = await c.rf(s, ["config", "set", "bench/healing/cli", `after-kill-${n++}`], 30_000);
          return res.exitCode === 0 && !/KV is unreachable/.test(res.stderr);
        },
        { gapMs: 0, timeoutMs: POLL_TIMEOUT_MS },
      );
      out.cli = r ? { s: sec(r.endMs), from: sec(r.startMs) } : { s: null, note: "> 120 s" };
      out.cliAttempts = r?.attempts;
      const firstOk = await waitFor(
        "a put after the kill succeeded",
        () => writerLines(writerLog).find((l) => l.ok && l.start !== undefined && l.start >= killEpoch),
        { timeoutMs: POLL_TIMEOUT_MS, intervalMs: 200 },
      ).catch(() => undefined);
      out.inProcess = firstOk ? { s: sec(firstOk.end! - killEpoch), from: sec(firstOk.start! - killEpoch) } : { s: null, note: "> 120 s" };
    }

    if (doRestart) {
      const wait = downSeconds * 1000 - (performance.now() - t0);
      if (wait > 0) await sleep(wait);
      out.ping.downS = sec(performance.now() - t0);
      const oldPid = agentPid(lab, leader);
      const tm = performance.now();
      let meshReturned: number | null = null;
      const mesh = c.rf(leader, ["mesh", "--no-after-mesh"], 180_000).then((res) => {
        meshReturned = res.exitCode === 0 ? performance.now() - tm : null;
        return res;
      });
      let agentStart: number | undefined;
      const agentWatch = (async () => {
        while (performance.now() - tm < POLL_TIMEOUT_MS) {
          const p = agentPid(lab, leader);
          if (p !== undefined && p !== oldPid) {
            agentStart = performance.now() - tm;
            return;
          }
          await sleep(25);
        }
      })();
      const ping = await pingUntil(lab, s, leaderAddr, tm);
      await agentWatch;
      const m = await mesh;
      out.ping.meshReturnedS = meshReturned !== null ? sec(meshReturned) : null;
      out.ping.fromMesh = ping ? { s: sec(ping.endMs), from: sec(ping.startMs) } : { s: null, note: "> 120 s" };
      if (m.exitCode !== 0) out.ping.fromMesh.note = `mesh exited ${m.exitCode}: ${m.stderr.trim().split("\n").pop()}`;
      out.ping.fromAgent =
        ping && agentStart !== undefined ? { s: sec(ping.endMs - agentStart), from: sec(ping.startMs - agentStart) } : { s: null, note: agentStart === undefined ? "agent never started" : "> 120 s" };
    }
    return out;
  } finally {
    await lab.destroy();
  }
}

// ---------------------------------------------------------------- 4': bare yggdrasil

function yggConfig(peers: string[], listen: boolean): Record<string, unknown> {
  const r = spawnSync("yggdrasil", ["-genconf", "-json"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`yggdrasil -genconf: ${r.stderr}`);
  const conf = JSON.parse(r.stdout) as Record<string, unknown>;
  return {
    ...conf,
    Peers: peers,
    Listen: listen ? [`tcp://[::]:${YGG_PORT}`] : [],
    AdminListen: "none",
    MulticastInterfaces: [], // as raptiformica configures it: peers only, no discovery
    IfName: "auto",
    NodeInfoPrivacy: true,
  };
}

async function bareYggdrasil(): Promise<{ oneWay: Sample; bothWays: Sample }> {
  const lab = await newLab(2);
  try {
    const [A, B] = [0, 1];
    const confPath = (i: number) => join(lab.nodes[i]!.dir, "ygg.conf");
    const aConf = yggConfig([`tcp://${lab.addressOf(B)}:${YGG_PORT}`], true);
    const bConf = yggConfig([], true);
    writeFileSync(confPath(A), JSON.stringify(aConf, null, 2), { mode: 0o600 });
    writeFileSync(confPath(B), JSON.stringify(bConf, null, 2), { mode: 0o600 });
    const bAddr = spawnSync("yggdrasil", ["-address", "-useconffile", confPath(B)], { encoding: "utf8" }).stdout.trim();
    const start = (i: number) => lab.spawn(i, ["yggdrasil", "-useconffile", confPath(i), "-logto", "stdout"], { label: "yggdrasil" });
    // B first: Yggdrasil 0.4 re-adds configured peers only about once a minute, so A dialling
    // a B that is not listening yet would wait that long.
    start(B);
    const bLog = join(lab.nodes[B]!.dir, "logs", "yggdrasil.log");
    await waitFor("B's yggdrasil listens", () => existsSync(bLog) && readFileSync(bLog, "utf8").includes("TCP listener started"), { timeoutMs: 20_000, intervalMs: 50 });
    start(A);
    const first = await pingUntil(lab, A, bAddr, performance.now(), { everyMs: 200, maxInFlight: 4, timeoutMs: 60_000 });
    if (!first) throw new Error("bare yggdrasil: A never reached B before the fault");
    await sleep(2000);

    const restart = async (): Promise<Sample> => {
      const tk = performance.now();
      await lab.killNode(B);
      const wait = downSeconds * 1000 - (performance.now() - tk);
      if (wait > 0) await sleep(wait);
      const t0 = performance.now();
      start(B);
      const r = await pingUntil(lab, A, bAddr, t0);
      return r ? { s: sec(r.endMs), from: sec(r.startMs) } : { s: null, note: "> 120 s" };
    };
    const oneWay = await restart();
    // Then as raptiformica configures it: B also dials A.
    writeFileSync(confPath(B), JSON.stringify({ ...bConf, Peers: [`tcp://${lab.addressOf(A)}:${YGG_PORT}`] }, null, 2), { mode: 0o600 });
    // Reach the steady state first (B up with the new config), then the same kill/restart.
    await lab.killNode(B);
    start(B);
    if (!(await pingUntil(lab, A, bAddr, performance.now(), { everyMs: 200, maxInFlight: 4, timeoutMs: POLL_TIMEOUT_MS }))) {
      return { oneWay, bothWays: { s: null, note: "never reconnected before the fault" } };
    }
    await sleep(2000);
    const bothWays = await restart();
    return { oneWay, bothWays };
  } finally {
    await lab.destroy();
  }
}

// ---------------------------------------------------------------- main

const loadAtStart = loadAverage();
const foreignAtStart = foreignLabProcesses([]);
const results: {
  failed: Sample[];
  serf: Sample[];
  replaced: Sample[];
  cli: Sample[];
  inProcess: Sample[];
  cliStartup: number[];
  cliHealthySet: number[];
  pingFromMesh: Sample[];
  pingFromAgent: Sample[];
  meshReturned: (number | null)[];
  yggOneWay: Sample[];
  yggBothWays: Sample[];
  pollMs: { members: number[]; membersMax: number[]; serf: number[] };
  failedOnProxy: Sample[];
  replacedOnProxy: Sample[];
  observers: { victim: string; leaderBefore: string; voter: Observed; proxy: Observed | null; leaderLogTail?: string[]; watchLog?: string[] }[];
  errors: string[];
} = {
  failed: [],
  serf: [],
  replaced: [],
  cli: [],
  inProcess: [],
  cliStartup: [],
  cliHealthySet: [],
  pingFromMesh: [],
  pingFromAgent: [],
  meshReturned: [],
  yggOneWay: [],
  yggBothWays: [],
  pollMs: { members: [], membersMax: [], serf: [] },
  failedOnProxy: [],
  replacedOnProxy: [],
  observers: [],
  errors: [],
};

const failure = (e: unknown): Sample => ({ s: null, note: `error: ${brief(e)}` });

for (let run = 1; run <= runs; run++) {
  console.error(`run ${run}/${runs} (load ${loadAverage()})`);
  if (only.has(1) || only.has(2)) {
    try {
      const r = await failedAndReplaced();
      results.failed.push(r.voter.failed);
      results.replaced.push(r.voter.replaced);
      if (r.voter.pollMs !== undefined) results.pollMs.members.push(r.voter.pollMs);
      if (r.voter.pollMaxMs !== undefined) results.pollMs.membersMax.push(r.voter.pollMaxMs);
      results.observers.push({ victim: r.victim, leaderBefore: `n${r.leaderBefore}`, voter: r.voter, proxy: r.proxy ?? null, ...(r.leaderLogTail ? { leaderLogTail: r.leaderLogTail } : {}), ...(r.watchLog ? { watchLog: r.watchLog } : {}) });
      if (r.watchLog) console.error(`  shown failed after more than ${SLOW_FAILED_S} s; the voters' failure watch said${r.watchLog.length ? `:\n    ${r.watchLog.join("\n    ")}` : " nothing"}`);
      if (r.leaderLogTail) {
        console.error(r.voter.replaced.s === null ? `  NOT replaced within 120 s; last roles on the voter: ${JSON.stringify(r.voter.lastRoles)}` : `  replaced after more than ${SLOW_REPLACED_S} s`);
        console.error(`  leader's agent.log tail:\n    ${r.leaderLogTail.join("\n    ")}`);
      }
      if (r.proxy) {
        results.failedOnProxy.push(r.proxy.failed);
        results.replacedOnProxy.push(r.proxy.replaced);
      }
      for (const o of [r.voter, ...(r.proxy ? [r.proxy] : [])]) {
        console.error(
          `  members on ${o.observer}: ${r.victim} failed ${fmtS(o.failed.s)} (poll started ${fmtS(o.failed.from)}), replaced ${fmtS(o.replaced.s)}; ` +
            `${o.noKv.polls}/${o.noKv.total} polls without KV${o.noKv.polls ? ` (${o.noKv.firstS}–${o.noKv.lastS} s)` : ""}; ` +
            `leader before the kill n${r.leaderBefore}, seen after: ${o.leaders.map((l) => `${l.name} (${l.s} s)`).join(", ") || "-"}`,
        );
      }
    } catch (e) {
      results.errors.push(`run ${run} failed/replaced: ${brief(e)}`);
      results.failed.push(failure(e));
      results.replaced.push(failure(e));
      results.failedOnProxy.push(failure(e));
      results.replacedOnProxy.push(failure(e));
    }
  }
  if (only.has(1)) {
    try {
      const r = await serfFailed();
      results.serf.push(r.failed);
      if (r.pollMs !== undefined) results.pollMs.serf.push(r.pollMs);
      console.error(`  serf: failed ${fmtS(r.failed.s)}`);
    } catch (e) {
      results.errors.push(`run ${run} serf: ${brief(e)}`);
      results.serf.push(failure(e));
    }
  }
  if (only.has(3) || only.has(4)) {
    try {
      const r = await leaderKilled(only.has(3), only.has(4));
      if (only.has(3)) {
        results.cli.push(r.cli);
        results.inProcess.push(r.inProcess);
        if (r.cliStartupS !== undefined) results.cliStartup.push(r.cliStartupS);
        if (r.cliHealthySetS !== undefined) results.cliHealthySet.push(r.cliHealthySetS);
      }
      if (only.has(4)) {
        results.pingFromMesh.push(r.ping.fromMesh);
        results.pingFromAgent.push(r.ping.fromAgent);
        results.meshReturned.push(r.ping.meshReturnedS ?? null);
      }
      console.error(`  leader killed: cli ${fmtS(r.cli.s)}, in-process ${fmtS(r.inProcess.s)}; restart ping ${fmtS(r.ping.fromMesh.s)} (agent ${fmtS(r.ping.fromAgent.s)})`);
    } catch (e) {
      results.errors.push(`run ${run} leader/restart: ${brief(e)}`);
      if (only.has(3)) {
        results.cli.push(failure(e));
        results.inProcess.push(failure(e));
      }
      if (only.has(4)) {
        results.pingFromMesh.push(failure(e));
        results.pingFromAgent.push(failure(e));
      }
    }
  }
  if (only.has(4)) {
    try {
      const r = await bareYggdrasil();
      results.yggOneWay.push(r.oneWay);
      results.yggBothWays.push(r.bothWays);
      console.error(`  bare yggdrasil: one way ${fmtS(r.oneWay.s)}, both ways ${fmtS(r.bothWays.s)}`);
    } catch (e) {
      results.errors.push(`run ${run} bare yggdrasil: ${brief(e)}`);
      results.yggOneWay.push(failure(e));
      results.yggBothWays.push(failure(e));
    }
  }
}

const med = (xs: Sample[]) => {
  const m = median(xs.map((x) => x.s).filter((x): x is number => x !== null));
  return m === undefined ? undefined : Math.round(m * 100) / 100;
};
const cell = (x: Sample | undefined) => (x === undefined ? "-" : x.s === null ? (x.note?.startsWith("> ") ? x.note : "fail") : `${x.s.toFixed(2)} s`);
const ratio = (() => {
  const a = med(results.failed);
  const b = med(results.serf);
  return a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 100) / 100 : undefined;
})();

const allRows: [string, Sample[], string][] = [
  ["1. killed voter shown failed (members on a voter)", results.failed, "≤ ½ serf"],
  ["   HashiCorp serf 0.8.2 (serf members)", results.serf, ""],
  ["   same, members asked on a proxy node", results.failedOnProxy, "≤ ½ serf"],
  ["2. dead voter replaced (members on a voter)", results.replaced, "≤ 10 s"],
  ["   same, members asked on a proxy node", results.replacedOnProxy, "≤ 10 s"],
  ["3. leader killed → write ok: config set CLI", results.cli, "≤ 3 s"],
  ["   same, etcd3 client in the namespace", results.inProcess, "≤ 3 s"],
  ["4. restarted node pingable: from mesh start", results.pingFromMesh, ""],
  ["   from agent start", results.pingFromAgent, "≤ 5 s"],
  ["   bare yggdrasil, only A dials B", results.yggOneWay, ""],
  ["   bare yggdrasil, both dial", results.yggBothWays, ""],
];
const rows = allRows.filter(([, xs]) => xs.length > 0);

const stack = labStack();
console.log(`Self-healing (Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}), ${runs} run(s); load average at start ${loadAtStart}, ${foreignAtStart} processes of other labs running at start (numbers are noisy)`);
const head = ["figure".padEnd(46), ...Array.from({ length: runs }, (_, k) => `run ${k + 1}`.padStart(9)), "median".padStart(9), "goal".padStart(8)];
console.log(head.join(" "));
for (const [name, xs, goal] of rows) {
  const m = med(xs);
  console.log([name.padEnd(46), ...Array.from({ length: runs }, (_, k) => cell(xs[k]).padStart(9)), (m === undefined ? "-" : `${m.toFixed(2)} s`).padStart(9), goal.padStart(8)].join(" "));
}
if (ratio !== undefined) console.log(`ratio failed-detection ours (members on a voter) / serf (medians): ${ratio}× (goal ≤ 0.5×)`);
if (results.cliStartup.length > 0) {
  console.log(`CLI cost on a healthy cluster (median): \`--version\` ${fmtS(median(results.cliStartup))}, a successful \`config set\` ${fmtS(median(results.cliHealthySet))}`);
}
if (results.pollMs.members.length > 0) {
  console.log(`figure 1 (voter): the poll that first saw "failed" started at ${results.failed.map((x) => fmtS(x.from)).join(", ")} (the state changed between the previous poll and the end of that one)`);
  for (const o of results.observers) {
    if (o.leaderLogTail) console.log(`leader's agent.log tail (run with ${o.victim} killed):\n  ${o.leaderLogTail.join("\n  ")}`);
    for (const x of [o.voter, ...(o.proxy ? [o.proxy] : [])]) {
      if (x.lastRoles) console.log(`members on ${x.observer}: ${o.victim} not replaced within 120 s; last answer: ${JSON.stringify(x.lastRoles)}`);
      if (x.noKv.polls > 0) console.log(`members on ${x.observer} said the KV does not answer in ${x.noKv.polls} of ${x.noKv.total} polls, ${x.noKv.firstS}–${x.noKv.lastS} s after ${o.victim} was killed`);
    }
  }
  console.log(
    `poll latency per run after the kill: members median ${results.pollMs.members.join(", ")} ms, max ${results.pollMs.membersMax.join(", ")} ms${results.pollMs.serf.length ? `; serf members median ${results.pollMs.serf.join(", ")} ms` : ""}`,
  );
}
if (results.meshReturned.length > 0) console.log(`\`mesh\` on the restarted node returned (ready) after: ${results.meshReturned.map((x) => (x === null ? "fail" : `${x} s`)).join(", ")}`);
for (const e of results.errors) console.log(`error: ${e}`);

const summary = (xs: Sample[], goal?: number) => ({ runs: xs, median: med(xs) ?? null, ...(goal !== undefined ? { goal } : {}) });
console.log(
  JSON.stringify({
    stack,
    runs,
    downSeconds,
    loadAtStart,
    foreignLabProcessesAtStart: foreignAtStart,
    failedSeconds: summary(results.failed),
    serfFailedSeconds: summary(results.serf),
    failedRatioOursToSerf: ratio ?? null,
    failedRatioGoal: 0.5,
    failedOnProxySeconds: summary(results.failedOnProxy),
    voterReplacedOnProxySeconds: summary(results.replacedOnProxy, 10),
    observers: results.observers,
    voterReplacedSeconds: summary(results.replaced, 10),
    leaderKilledWriteSeconds: { cli: summary(results.cli, 3), inNamespaceClient: summary(results.inProcess, 3), cliStartupSeconds: median(results.cliStartup) ?? null, cliHealthySetSeconds: median(results.cliHealthySet) ?? null },
    restartPingSeconds: {
      fromMeshStart: summary(results.pingFromMesh),
      fromAgentStart: summary(results.pingFromAgent, 5),
      meshReturnedSeconds: results.meshReturned,
      bareYggdrasilOneWay: summary(results.yggOneWay),
      bareYggdrasilBothWays: summary(results.yggBothWays),
    },
    pollMs: results.pollMs,
    errors: results.errors,
    bin: BIN,
  }),
);
