/**
 * Benchmark: the one-hour soak (issue 15). A lab cluster of 10 members (up to 5 voters, the
 * default `meshnet/etcd/max_voters`; `meshnet/evict_after` set to `--evict-after`, 120 s, at
 * formation so evictions happen during the run) under steady churn for `--minutes` (60):
 *
 * - churn, one member out at a time (so quorum always holds): a member leaves (`clean`) and
 *   joins again (LabCluster.join) after 10–60 s; or it leaves and joins again only once the
 *   leader evicted it (its neighbour entry gone, after `evict_after`); or it is killed whole
 *   (every process in its namespace, a power cut) and started again 10–60 s later with `mesh
 *   --no-after-mesh`, as its boot would; or it is killed and joins again after its eviction.
 *   The member is a non-voter, or with `--voter-share` (0.2) a voter (the leader too), which
 *   the cluster must replace. Once the member is back the cluster is waited for to be whole
 *   (10 alive, 5 voters, quorum; `--recover-seconds`, 240), then a pause of `--churn-seconds`
 *   (30) ±50 % before the next event;
 * - config writes throughout, one at a time, every `--write-seconds` (3) ±50 %, on a random
 *   member that is in: `config set raptiformica/soak/k<N> <value>` over `--keys` (12) keys, one
 *   in ten a `config delete`;
 * - an app's writes beside them, `--app-writes-per-second` (10; 0: none): bench/lib/etcd-writer.ts
 *   on one member (moved to another before that member goes out) puts a small value to
 *   `soak-app/writer` on its local endpoint, outside raptiformica/, where no agent watches. etcd
 *   keeps the last 10 000 revisions of history and compacts every 5 minutes
 *   (src/consensus/etcd-args.ts); the churn and config writes alone make about 65 revisions a
 *   minute, so an hour would never reach the first compaction and the in-use size would only
 *   show the history piling up towards it. With the app's writes the history passes 10 000
 *   revisions in about 15 minutes, and the rest of the run shows whether compaction holds the
 *   database where it is;
 * - every minute: each voter's `etcd_mvcc_db_total_size_in_bytes` and
 *   `etcd_mvcc_db_total_size_in_use_in_bytes` (its /metrics, read with curl) with its current
 *   and compacted revision, the keys under raptiformica/ and their bytes (etcdctl), the members
 *   alive and the voters as `members --json` on a member sees them, the agents running;
 * - every 5 s: each agent's pid. A pid that changed on a member the soak did not touch is an
 *   agent restart (its keeper started it again); an agent missing for 60 s is a failure.
 *
 * The choices (kinds, members by role, hold times, pauses, keys, values) come from `--seed`
 * (printed), so a run can be replayed; which member a choice lands on depends on the roles at
 * that time. At the end, with the churn over and the cluster waited for to be whole again
 * (bounded, 300 s), the verdicts:
 *
 * - `allAlive`: 10 members alive, 5 voters, quorum, and every member's agent running;
 * - `dbBounded`: the largest in-use size over the voters in the last quarter of the run is at
 *   most `--db-factor` (1.5) × the largest in its second quarter, and the keys under
 *   raptiformica/ at the end are no more than at the start plus the soak's own keys
 *   (bench/lib/soak-checks.ts);
 * - `lostConfigWrites`: keys where `config get` on some member does not give the last
 *   acknowledged value (absent after a delete); a write that failed may or may not have taken
 *   effect until the next acknowledged one; goal 0;
 * - agent restarts seen, churn events by kind, and every failed step with its error.
 *
 * Prints a table and one JSON line with the per-minute series. Exit 0 when every verdict holds
 * and no step failed.
 *
 *   node --import tsx bench/soak.ts [--minutes 60] [--seed N] [--churn-seconds 30] [--write-seconds 3] [--keys 12]
 *        [--evict-after 120] [--voter-share 0.2] [--recover-seconds 240] [--db-factor 1.5] [--app-writes-per-second 10] [--keep-logs DIR]
 *
 * `--keep-logs DIR` copies every member's logs there before the lab is removed (also on Ctrl-C),
 * and the logs of a member that leaves just before its `clean` removes them; without it they are
 * kept in $TMPDIR/raptiformica-soak-<seed>-<time>/ when a verdict fails. The lab is destroyed at
 * exit, also on Ctrl-C or failure. Needs root, yggdrasil, etcd, etcdctl and curl
 * (RAPTIFORMICA_LAB_PATH as for every lab benchmark); `npm run build` first.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab } from "../test/lab/index.ts";
import { LabCluster, pool } from "../test/helpers/cluster.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { intBetween, mulberry32, pick, seedFor } from "../test/chaos/prng.ts";
import { agentPid, brief, labStack, loadAverage, median, numOpt, requireLabBench, sleep, strOpt } from "./lib/common.ts";
import { AUTO_COMPACTION_REVISIONS } from "../src/consensus/etcd-args.ts";
import { configMismatches, dbVerdict, expectedValues, type DbVerdict, type Mismatch, type SoakWrite } from "./lib/soak-checks.ts";

const MEMBERS = 10;
/** The voter target: the largest odd number ≤ the alive members (9 or 10 here), at most max_voters (5). */
const VOTERS = 5;
const CHURN_KINDS = ["leave", "leave-evicted", "kill", "kill-evicted"] as const;
type ChurnKind = (typeof CHURN_KINDS)[number];
/** How often each kind is drawn: the quick ones three times as often as the ones waiting for an eviction. */
const KIND_WEIGHTS: Record<ChurnKind, number> = { leave: 3, "leave-evicted": 1, kill: 3, "kill-evicted": 1 };
const HOLD_MIN_MS = 10_000;
const HOLD_MAX_MS = 60_000;
const AGENT_WATCH_MS = 5000;
const AGENT_DEAD_MS = 60_000;
const FINAL_WHOLE_MS = 300_000;

requireLabBench(["ip", "yggdrasil", "etcd", "etcdctl", "curl"]);

const minutes = numOpt("--minutes", 60);
const seed = numOpt("--seed", Math.floor(Math.random() * 2 ** 31));
const churnMs = numOpt("--churn-seconds", 30) * 1000;
const writeMs = numOpt("--write-seconds", 3) * 1000;
const soakKeys = numOpt("--keys", 12);
const evictAfterS = numOpt("--evict-after", 120);
const voterShare = numOpt("--voter-share", 0.2);
const recoverMs = numOpt("--recover-seconds", 240) * 1000;
const dbFactor = numOpt("--db-factor", 1.5);
const appRate = numOpt("--app-writes-per-second", 10);
const appRand = mulberry32(seedFor(seed, "app"));
const keepLogsOpt = strOpt("--keep-logs", "");
const durationMs = minutes * 60_000;

// ---- what the run records ----

interface Failure {
  /** Seconds since the churn began (while forming: since the run began). */
  readonly t: number;
  readonly step: string;
  readonly error: string;
}

interface ChurnEvent {
  readonly kind: ChurnKind;
  readonly member: string;
  /** Its role when it went out: leader, voter, learner, proxy. */
  readonly role: string;
  /** Seconds since the churn began. */
  readonly at: number;
  /** Seconds it was out (from going out to being started or joined again). */
  outS: number | null;
  /** Seconds from going out until the cluster was whole again; null: not within --recover-seconds. */
  wholeS: number | null;
  note: string;
  error?: string;
}

interface VoterDb {
  totalBytes: number | null;
  inUseBytes: number | null;
  revision: number | null;
  compactRevision: number | null;
}

interface Sample {
  /** Minutes since the churn began. */
  readonly t: number;
  alive: number | null;
  voters: string[];
  quorum: boolean | null;
  /** Members shown neither alive nor absent: name → status (failed, left). */
  notAlive: Record<string, string>;
  db: Record<string, VoterDb>;
  /** The largest over the voters. */
  totalBytes: number | null;
  inUseBytes: number | null;
  keys: number | null;
  /** The same keys by folder (nodes, links, meshnet/neighbours, soak, …). */
  keysBy: Record<string, number>;
  /** Bytes of the keys and values under raptiformica/ (the live data, without history). */
  liveBytes: number | null;
  revision: number | null;
  /** The revision etcd compacted its history to (-1: not yet), the largest over the voters. */
  compactRevision: number | null;
  agents: number;
  out: string | null;
  load: string;
  /** `members` answers without quorum before the one kept (each asked again 5 s later). */
  noQuorumAnswers: number;
  error?: string;
}

interface AgentRestart {
  readonly t: number;
  readonly member: string;
  readonly from: number;
  readonly to: number;
}

const failures: Failure[] = [];
const events: ChurnEvent[] = [];
const samples: Sample[] = [];
const writes: (SoakWrite & { member: string; at: number })[] = [];
const agentRestarts: AgentRestart[] = [];
let t0 = Date.now();
const since = () => Math.round((Date.now() - t0) / 100) / 10;
const log = (l: string) => {
  const s = since();
  const mm = `${s < 0 ? "-" : ""}${String(Math.floor(Math.abs(s) / 60)).padStart(2, "0")}:${String(Math.floor(Math.abs(s) % 60)).padStart(2, "0")}`;
  console.error(`  [${mm}] ${l}`);
};
const fail = (step: string, e: unknown) => {
  const f = { t: since(), step, error: brief(e) };
  failures.push(f);
  log(`FAILED ${step}: ${f.error}`);
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

// ---- logs ----

let keepLogsDir = keepLogsOpt;
let logsKept = false;
let theLab: Lab | undefined;

/** A member's logs before `clean` removes them, when logs are kept. */
function keepLogsBeforeClean(lab: Lab, i: number, k: number): void {
  if (!keepLogsDir) return;
  const from = join(lab.nodes[i]!.cacheDir, "node", "log");
  try {
    if (existsSync(from)) cpSync(from, join(keepLogsDir, lab.nodes[i]!.name, `node-before-clean-${k}`), { recursive: true });
  } catch {
    // gone meanwhile
  }
}

// Registered before the lab's own exit hook (installed by Lab.create), so it runs first: on
// Ctrl-C (lib/common.ts exits on SIGINT/SIGTERM) the logs are copied before the lab goes.
process.on("exit", () => {
  if (theLab && keepLogsDir && !logsKept) {
    logsKept = true;
    theLab.copyLogs(keepLogsDir);
    console.error(`logs kept in ${keepLogsDir}`);
  }
});

// ---- the cluster as members see it ----

interface MemberRow {
  name: string;
  publicKey?: string;
  status: string;
  role?: string;
}

/** Per member: in the cluster, taken out by the churn, or brought back and not yet whole again. */
const phase: ("in" | "out" | "back")[] = Array.from({ length: MEMBERS }, () => "in");
const stable = () => phase.flatMap((p, i) => (p === "in" ? [i] : []));
const idx = (name: string) => Number(name.slice(1));
const isVoter = (r: MemberRow) => r.status === "alive" && (r.role === "voter" || r.role === "leader");

/** `members --json` on the first member in that answers (in a random order from `rand`). */
async function membersView(c: LabCluster, rand: () => number): Promise<{ quorum: boolean; members: MemberRow[]; from: number }> {
  const order = [...stable()];
  for (let k = order.length - 1; k > 0; k--) {
    const j = Math.floor(rand() * (k + 1));
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  order.length = Math.min(order.length, 3);
  let last: unknown = new Error("no member in to ask");
  for (const i of order) {
    try {
      const m = await c.members(i);
      return { ...m, from: i };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

interface Whole {
  ok: boolean;
  detail: string;
}

async function wholeNow(c: LabCluster, rand: () => number): Promise<Whole> {
  try {
    const m = await membersView(c, rand);
    const alive = m.members.filter((x) => x.status === "alive").length;
    const voters = m.members.filter(isVoter).map((x) => x.name);
    const others = m.members.filter((x) => x.status !== "alive").map((x) => `${x.name} ${x.status}`);
    const ok = m.quorum && alive === MEMBERS && voters.length === VOTERS;
    return { ok, detail: `from n${m.from}: quorum ${m.quorum}, ${alive} alive, voters ${voters.join(",") || "none"}${others.length ? `; ${others.join(", ")}` : ""}` };
  } catch (e) {
    return { ok: false, detail: brief(e) };
  }
}

/** Polls until whole or `ms` pass (or `until` returns true); the last answer. */
async function waitWhole(c: LabCluster, rand: () => number, ms: number): Promise<Whole> {
  const end = Date.now() + ms;
  let last: Whole = { ok: false, detail: "not asked" };
  while (Date.now() < end) {
    last = await wholeNow(c, rand);
    if (last.ok) return last;
    await sleep(2000);
  }
  return last;
}

// ---- etcd figures ----

function tlsArgs(lab: Lab, i: number): string[] {
  const tls = join(lab.nodes[i]!.cacheDir, "node", "etcd", "tls");
  return ["--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key")];
}

/** A voter's database size and revisions from its /metrics; nulls when it does not answer. */
async function voterDb(lab: Lab, i: number): Promise<VoterDb> {
  const r = await lab.exec(i, ["curl", "-sS", "--http1.1", "--max-time", "10", ...tlsArgs(lab, i), "https://127.0.0.1:2379/metrics"], { timeoutMs: 15_000 }).catch(() => undefined);
  const num = (name: string) => {
    const m = r && r.exitCode === 0 ? new RegExp(`^${name} (\\S+)$`, "m").exec(r.stdout) : null;
    return m ? Number(m[1]) : null;
  };
  return {
    totalBytes: num("etcd_mvcc_db_total_size_in_bytes"),
    inUseBytes: num("etcd_mvcc_db_total_size_in_use_in_bytes"),
    revision: num("etcd_debugging_mvcc_current_revision"),
    compactRevision: num("etcd_debugging_mvcc_compact_revision"),
  };
}

/** The keys under raptiformica/, their keys' and values' bytes, and the revision, read on voter i with etcdctl. */
async function liveData(c: LabCluster, i: number): Promise<{ count: number; bytes: number; revision: number; by: Record<string, number> }> {
  const r = await c.lab.exec(
    i,
    ["etcdctl", "--endpoints", "https://127.0.0.1:2379", ...tlsArgs(c.lab, i), "--command-timeout", "10s", "get", "raptiformica/", "--prefix", "-w", "json"],
    { env: { PATH: c.env["PATH"], ETCDCTL_API: "3" }, timeoutMs: 20_000 },
  );
  if (r.exitCode !== 0) throw new Error(`etcdctl on n${i} exited ${r.exitCode}: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout) as { count?: number; kvs?: { key: string; value?: string }[]; header?: { revision?: number | string } };
  const b64 = (x: string | undefined) => (x ? Buffer.from(x, "base64").length : 0);
  // By folder: the first segment below raptiformica/, two for meshnet/ (meshnet/neighbours, …).
  const by: Record<string, number> = {};
  for (const kv of j.kvs ?? []) {
    const parts = Buffer.from(kv.key, "base64").toString("utf8").split("/").slice(1);
    const folder = parts.slice(0, parts[0] === "meshnet" && parts.length > 2 ? 2 : 1).join("/");
    by[folder] = (by[folder] ?? 0) + 1;
  }
  return { count: j.count ?? 0, bytes: (j.kvs ?? []).reduce((a, kv) => a + b64(kv.key) + b64(kv.value), 0), revision: Number(j.header?.revision ?? 0), by };
}

async function sample(c: LabCluster, rand: () => number, t: number, out: string | null): Promise<Sample> {
  const s: Sample = { t, alive: null, voters: [], quorum: null, notAlive: {}, db: {}, totalBytes: null, inUseBytes: null, keys: null, keysBy: {}, liveBytes: null, revision: null, compactRevision: null, agents: 0, out, load: loadAverage(), noQuorumAnswers: 0 };
  s.agents = c.lab.nodes.filter((_, i) => agentPid(c.lab, i) !== undefined).length;
  // An answer without quorum (a leader just gone) is kept in the count and asked again, up to
  // 3 times 5 s apart: the voters' figures need a view with them.
  let m: Awaited<ReturnType<typeof membersView>> | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      m = await membersView(c, rand);
      if (m.quorum) break;
      s.noQuorumAnswers++;
    } catch (e) {
      s.error = `members: ${brief(e)}`;
    }
    if (attempt < 3) await sleep(5000);
  }
  if (!m) return s;
  delete s.error;
  s.alive = m.members.filter((x) => x.status === "alive").length;
  s.quorum = m.quorum;
  s.voters = m.members.filter(isVoter).map((x) => x.name);
  for (const x of m.members) if (x.status !== "alive") s.notAlive[x.name] = x.status;
  const voters = s.voters.map(idx);
  const dbs = await Promise.all(voters.map((i) => voterDb(c.lab, i)));
  voters.forEach((i, k) => (s.db[`n${i}`] = dbs[k]!));
  const largest = (xs: (number | null)[]) => (xs.some((x) => x !== null) ? Math.max(...xs.filter((x): x is number => x !== null)) : null);
  s.totalBytes = largest(dbs.map((d) => d.totalBytes));
  s.inUseBytes = largest(dbs.map((d) => d.inUseBytes));
  s.compactRevision = largest(dbs.map((d) => d.compactRevision));
  // On the first voter that answers (one just killed may still be listed).
  for (const i of voters) {
    try {
      const k = await liveData(c, i);
      s.keys = k.count;
      s.keysBy = k.by;
      s.liveBytes = k.bytes;
      s.revision = k.revision;
      delete s.error;
      break;
    } catch (e) {
      s.error = `key count on n${i}: ${brief(e)}`;
    }
  }
  return s;
}

// ---- churn ----

function pickKind(rand: () => number): ChurnKind {
  const total = CHURN_KINDS.reduce((a, k) => a + KIND_WEIGHTS[k], 0);
  let x = rand() * total;
  for (const k of CHURN_KINDS) {
    x -= KIND_WEIGHTS[k];
    if (x < 0) return k;
  }
  return "kill";
}

/** Waits until no member lists `publicKey` (its neighbour entry evicted). */
async function waitEvicted(c: LabCluster, rand: () => number, publicKey: string): Promise<number> {
  const t = Date.now();
  const end = t + evictAfterS * 1000 + 150_000;
  let last = "not asked";
  while (Date.now() < end) {
    try {
      const m = await membersView(c, rand);
      const row = m.members.find((x) => x.publicKey === publicKey);
      if (!row) return Date.now() - t;
      last = `still listed, ${row.status}`;
    } catch (e) {
      last = brief(e);
    }
    await sleep(3000);
  }
  throw new Error(`not evicted within ${evictAfterS + 150} s (evict_after ${evictAfterS} s); last: ${last}`);
}

/** Brings member i back: `mesh --no-after-mesh` after a plain kill, else a join through a member in. */
async function bringBack(c: LabCluster, kind: ChurnKind, i: number, rand: () => number): Promise<void> {
  if (kind === "kill") {
    await c.rfOk(i, ["mesh", "--no-after-mesh"], 240_000);
    return;
  }
  const via = pick(rand, stable());
  await withTimeout(c.join(i, via), 300_000, `n${i} joining through n${via}`);
}

async function churnEvent(c: LabCluster, rand: () => number, k: number): Promise<boolean> {
  const kind = pickKind(rand);
  const wantVoter = rand() < voterShare;
  const holdMs = intBetween(rand, HOLD_MIN_MS, HOLD_MAX_MS);
  let view: Awaited<ReturnType<typeof membersView>>;
  try {
    view = await membersView(c, rand);
  } catch (e) {
    fail(`churn ${k}: members before choosing`, e);
    return true;
  }
  const inNow = new Set(stable());
  const rows = view.members.filter((x) => x.status === "alive" && /^n\d+$/.test(x.name) && inNow.has(idx(x.name)));
  const voters = rows.filter(isVoter);
  const others = rows.filter((x) => !isVoter(x));
  const candidates = (wantVoter && voters.length > 0) || others.length === 0 ? voters : others;
  if (candidates.length === 0) {
    fail(`churn ${k}`, new Error("no member alive to take out"));
    return true;
  }
  const target = pick(rand, [...candidates].sort((a, b) => idx(a.name) - idx(b.name)));
  const i = idx(target.name);
  const ev: ChurnEvent = { kind, member: target.name, role: target.role ?? "-", at: since(), outS: null, wholeS: null, note: "" };
  events.push(ev);
  const start = Date.now();
  const publicKey = target.publicKey ?? (await c.identity(i)).publicKey;
  log(`${kind} of ${target.name} (${ev.role})`);
  await moveAppOff(c.lab, i);
  phase[i] = "out";
  let out = true;
  try {
    if (kind === "leave" || kind === "leave-evicted") {
      keepLogsBeforeClean(c.lab, i, k);
      await c.rfOk(i, ["clean"], 120_000);
    } else {
      await c.lab.killNode(i);
    }
    if (kind === "leave-evicted" || kind === "kill-evicted") {
      const ms = await waitEvicted(c, rand, publicKey);
      ev.note = `evicted ${Math.round(ms / 1000)} s after going out`;
    } else {
      await sleep(holdMs);
      ev.note = `out ${Math.round(holdMs / 1000)} s`;
    }
  } catch (e) {
    ev.error = brief(e);
    fail(`churn ${k}: ${kind} of ${target.name}`, e);
  }
  // Back in, whatever happened: a few tries.
  for (let attempt = 1; attempt <= 3 && out; attempt++) {
    phase[i] = "back";
    try {
      await bringBack(c, kind, i, rand);
      out = false;
    } catch (e) {
      phase[i] = "out";
      fail(`churn ${k}: bringing ${target.name} back (${kind}), try ${attempt}`, e);
      ev.error ??= brief(e);
      if (attempt < 3) await sleep(15_000);
    }
  }
  ev.outS = Math.round((Date.now() - start) / 100) / 10;
  if (out) {
    log(`${kind} of ${target.name} (${ev.role}): could not bring it back; no more churn`);
    return false;
  }
  const whole = await waitWhole(c, rand, recoverMs);
  ev.wholeS = whole.ok ? Math.round((Date.now() - start) / 100) / 10 : null;
  phase[i] = "in";
  lastPid[i] = agentPid(c.lab, i);
  deadSince[i] = undefined;
  deadReported.delete(i);
  log(`${kind} of ${target.name} (${ev.role}): ${ev.note}, back after ${ev.outS} s; ${whole.ok ? `whole again after ${ev.wholeS} s` : `NOT whole within ${recoverMs / 1000} s (${whole.detail})`}`);
  if (!whole.ok) fail(`churn ${k}: cluster whole again after ${kind} of ${target.name}`, new Error(`not within ${recoverMs / 1000} s: ${whole.detail}`));
  return true;
}

// ---- agents ----

const lastPid: (number | undefined)[] = Array.from({ length: MEMBERS }, () => undefined);
const deadSince: (number | undefined)[] = Array.from({ length: MEMBERS }, () => undefined);
const deadReported = new Set<number>();

/**
 * On the members that are in: an agent pid other than the last one seen is a restart the soak
 * did not cause; no agent for AGENT_DEAD_MS is a failure (once per outage).
 */
function watchAgents(lab: Lab): void {
  for (const i of stable()) {
    const pid = agentPid(lab, i);
    if (pid === undefined) {
      deadSince[i] ??= Date.now();
      if (Date.now() - deadSince[i]! > AGENT_DEAD_MS && !deadReported.has(i)) {
        deadReported.add(i);
        fail(`agent of n${i}`, new Error(`not running for ${AGENT_DEAD_MS / 1000} s (last pid ${lastPid[i] ?? "none"})`));
      }
      continue;
    }
    deadSince[i] = undefined;
    deadReported.delete(i);
    const before = lastPid[i];
    if (before !== undefined && pid !== before) {
      agentRestarts.push({ t: since(), member: `n${i}`, from: before, to: pid });
      log(`agent of n${i}: pid ${before} → ${pid} (the soak did not touch it)`);
    }
    lastPid[i] = pid;
  }
}

// ---- the app writer ----

/** Where the app writer puts: outside raptiformica/, so no agent watches it (an app's own key). */
const APP_KEY = "soak-app/writer";
let app: { member: number; child: ChildProcess } | undefined;

/** Starts bench/lib/etcd-writer.ts on member i's local endpoint, a put every 1/appRate s; its lines go to <node dir>/logs/app-writer.log. */
function startApp(lab: Lab, i: number): void {
  if (appRate <= 0) return;
  const child = lab.spawn(
    i,
    [
      process.execPath, "--import", "tsx", join(ROOT, "bench", "lib", "etcd-writer.ts"),
      "--tls-dir", join(lab.nodes[i]!.cacheDir, "node", "etcd", "tls"),
      "--every", String(Math.max(1, Math.round(1000 / appRate))),
      "--seconds", String(Math.round(minutes * 60 + 3600)),
      "--in-flight", "10",
      "--key", APP_KEY,
    ],
    { label: "app-writer", cwd: ROOT },
  );
  app = { member: i, child };
}

async function stopApp(): Promise<void> {
  const a = app;
  app = undefined;
  if (!a || a.child.exitCode !== null || a.child.signalCode !== null) return;
  const gone = new Promise<void>((r) => a.child.once("exit", () => r()));
  try {
    process.kill(-a.child.pid!, "SIGTERM");
  } catch {
    return;
  }
  await Promise.race([gone, sleep(3000)]);
}

/** Before member i goes out: the app writer moves to another member that is in. */
async function moveAppOff(lab: Lab, i: number): Promise<void> {
  if (!app || app.member !== i) return;
  await stopApp();
  const others = stable().filter((j) => j !== i);
  if (others.length > 0) startApp(lab, pick(appRand, others));
}

/** The app writer's puts over the run, from its logs on every member: acknowledged and failed. */
function appCounts(lab: Lab): { ok: number; failed: number } {
  let ok = 0;
  let failed = 0;
  for (const n of lab.nodes) {
    let text = "";
    try {
      text = readFileSync(join(n.dir, "logs", "app-writer.log"), "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (line.includes('"ok":true')) ok++;
      else if (line.includes('"ok":false')) failed++;
    }
  }
  return { ok, failed };
}

// ---- config writes ----

async function writeLoop(c: LabCluster, rand: () => number, stop: () => boolean): Promise<void> {
  let n = 0;
  while (!stop()) {
    const targets = stable();
    const key = `raptiformica/soak/k${intBetween(rand, 0, soakKeys - 1)}`;
    const del = rand() < 0.1;
    const value = `s${seed}-w${n++}`;
    const pause = writeMs * (0.5 + rand());
    if (targets.length > 0) {
      const i = pick(rand, targets);
      const at = since();
      const r = await c.rf(i, del ? ["config", "delete", key] : ["config", "set", key, value], 60_000);
      let outcome: SoakWrite["outcome"] = "unknown";
      if (r.exitCode === 0) outcome = /queued/.test(r.stderr) ? "queued" : "ok";
      else if (del && r.exitCode === 66) outcome = "ok";
      writes.push({ key, value: del ? null : value, outcome, member: `n${i}`, at });
      if (outcome === "unknown") fail(`config ${del ? "delete" : "set"} ${key} on n${i}`, new Error(`exit ${r.exitCode}${r.timedOut ? " (timed out)" : ""}: ${r.stderr.trim().split("\n").slice(-1)[0] ?? ""}`));
      if (outcome === "queued") log(`config write on n${i} queued (its KV did not answer): ${key}`);
    }
    await sleep(pause);
  }
}

/** `config get` of every soak key on every member: member → key → value (null: not set); a key that could not be read is left out, its error listed. */
async function readBack(c: LabCluster, keys: readonly string[]): Promise<{ reads: Map<string, Map<string, string | null>>; errors: string[]; cached: number }> {
  const reads = new Map<string, Map<string, string | null>>();
  const errors: string[] = [];
  let cached = 0;
  const jobs = c.lab.nodes.flatMap((n) => keys.map((key) => ({ i: n.index, name: n.name, key })));
  for (const n of c.lab.nodes) reads.set(n.name, new Map());
  await pool(jobs, 3, async ({ i, name, key }) => {
    const r = await c.rf(i, ["config", "get", key], 60_000);
    if (/warning:/.test(r.stderr)) cached++;
    if (r.exitCode === 0) reads.get(name)!.set(key, r.stdout.replace(/\n$/, ""));
    else if (r.exitCode === 66) reads.get(name)!.set(key, null);
    else errors.push(`${name} ${key}: exit ${r.exitCode}${r.timedOut ? " (timed out)" : ""}: ${r.stderr.trim().split("\n").slice(-1)[0] ?? ""}`);
  });
  return { reads, errors, cached };
}

// ---- the run ----

interface Result {
  formationS: number | null;
  churnMinutes: number | null;
  allAlive: boolean;
  finalWhole: string;
  agentsRunningAtEnd: number;
  db: DbVerdict | null;
  lostConfigWrites: number;
  mismatches: Mismatch[];
  readErrors: string[];
  cachedReads: number;
  /** The app writer's puts: acknowledged, failed. */
  app: { ok: number; failed: number };
}

async function run(): Promise<Result> {
  const res: Result = { formationS: null, churnMinutes: null, allAlive: false, finalWhole: "not reached", agentsRunningAtEnd: 0, db: null, lostConfigWrites: 0, mismatches: [], readErrors: [], cachedReads: 0, app: { ok: 0, failed: 0 } };
  const lab = await Lab.create({ nodes: MEMBERS, topology: "full" });
  theLab = lab;
  const c = new LabCluster(lab);
  const ask = mulberry32(seedFor(seed, "ask"));
  let agentTimer: NodeJS.Timeout | undefined;
  try {
    t0 = Date.now(); // while forming; the churn's own start below
    const tf = performance.now();
    try {
      await c.form(MEMBERS, {
        config: { "meshnet/evict_after": String(evictAfterS) },
        joins: "together",
        voters: VOTERS,
        aliveTimeoutMs: 240_000,
        meshTimeoutMs: 300_000,
        votersTimeoutMs: 240_000,
      });
    } catch (e) {
      fail("forming the cluster", e);
      return res;
    }
    res.formationS = Math.round((performance.now() - tf) / 100) / 10;
    console.error(`  cluster of ${MEMBERS} formed in ${res.formationS} s (lab ${lab.id}); load ${loadAverage()}`);

    t0 = Date.now();
    for (let i = 0; i < MEMBERS; i++) lastPid[i] = agentPid(lab, i);
    samples.push(await sample(c, ask, 0, null));
    log(`start: ${describeSample(samples[0]!)}`);
    agentTimer = setInterval(() => watchAgents(lab), AGENT_WATCH_MS);
    startApp(lab, pick(appRand, stable()));

    let stopWrites = false;
    const writer = writeLoop(c, mulberry32(seedFor(seed, "writes")), () => stopWrites);
    let churnOver = false;
    const sampler = (async () => {
      for (let k = 1; ; k++) {
        const at = t0 + k * 60_000;
        while (Date.now() < at && !churnOver) await sleep(Math.min(1000, at - Date.now()));
        if (churnOver) return;
        const outNow = phase.findIndex((p) => p !== "in");
        const s = await sample(c, ask, Math.round(((Date.now() - t0) / 60_000) * 100) / 100, outNow >= 0 ? `n${outNow} ${phase[outNow]}` : null);
        samples.push(s);
        log(describeSample(s));
      }
    })();

    const churnRand = mulberry32(seedFor(seed, "churn"));
    for (let k = 1; Date.now() - t0 < durationMs; k++) {
      if (!(await churnEvent(c, churnRand, k))) break;
      const pause = churnMs * (0.5 + churnRand());
      const end = Math.min(Date.now() + pause, t0 + durationMs);
      while (Date.now() < end) await sleep(Math.min(1000, end - Date.now()));
    }
    res.churnMinutes = Math.round(((Date.now() - t0) / 60_000) * 100) / 100;
    log(`churn over after ${res.churnMinutes} min (${events.length} events); config writes stop`);
    stopWrites = true;
    await writer;
    await stopApp();
    res.app = appCounts(lab);
    churnOver = true;
    await sampler;

    const whole = await waitWhole(c, ask, FINAL_WHOLE_MS);
    res.finalWhole = whole.detail;
    res.agentsRunningAtEnd = lab.nodes.filter((_, i) => agentPid(lab, i) !== undefined).length;
    watchAgents(lab);
    clearInterval(agentTimer);
    agentTimer = undefined;
    res.allAlive = whole.ok && res.agentsRunningAtEnd === MEMBERS && phase.every((p) => p === "in");
    log(`${whole.ok ? "cluster whole" : "cluster NOT whole"} (${whole.detail}); agents running ${res.agentsRunningAtEnd}/${MEMBERS}`);
    const last = await sample(c, ask, Math.round(((Date.now() - t0) / 60_000) * 100) / 100, null);
    samples.push(last);
    log(`end: ${describeSample(last)}`);

    const expected = expectedValues(writes);
    const back = await readBack(c, [...expected.keys()].sort());
    res.mismatches = configMismatches(expected, back.reads);
    res.lostConfigWrites = new Set(res.mismatches.map((m) => m.key)).size;
    res.readErrors = back.errors;
    res.cachedReads = back.cached;
    res.db = dbVerdict(
      samples.map((s) => ({ t: s.t, inUseBytes: s.inUseBytes, keys: s.keys === null ? null : s.keys - (s.keysBy["soak"] ?? 0) })),
      minutes,
      dbFactor,
    );

    const failed = !res.allAlive || !res.db.bounded || res.lostConfigWrites > 0 || res.readErrors.length > 0 || failures.length > 0;
    if (failed && !keepLogsDir) keepLogsDir = join(tmpdir(), `raptiformica-soak-${seed}-${Date.now()}`);
    return res;
  } catch (e) {
    fail("the run", e);
    if (!keepLogsDir) keepLogsDir = join(tmpdir(), `raptiformica-soak-${seed}-${Date.now()}`);
    return res;
  } finally {
    if (agentTimer) clearInterval(agentTimer);
    await stopApp();
    if (keepLogsDir && !logsKept) {
      logsKept = true;
      mkdirSync(keepLogsDir, { recursive: true });
      lab.copyLogs(keepLogsDir);
      console.error(`  logs kept in ${keepLogsDir}`);
    }
    await lab.destroy().catch((e: unknown) => fail("destroying the lab", e));
    theLab = undefined;
  }
}

const mb = (b: number | null) => (b === null ? "-" : (b / 1024 / 1024).toFixed(2));

function describeSample(s: Sample): string {
  return (
    `alive ${s.alive ?? "?"}, voters ${s.voters.join(",") || "?"}${s.quorum === false ? " NO QUORUM" : ""}, db ${mb(s.totalBytes)} MB (in use ${mb(s.inUseBytes)} MB), ` +
    `keys ${s.keys ?? "?"}, revision ${s.revision ?? "?"}, agents ${s.agents}${s.out ? `, out: ${s.out}` : ""}; load ${s.load}` +
    `${s.noQuorumAnswers ? `; ${s.noQuorumAnswers} answer(s) without quorum first` : ""}${s.error ? `; ${s.error}` : ""}`
  );
}

const stack = labStack();
const loadAtStart = loadAverage();
/** The commit the members run (dist/ is built from the work tree: "+" when src/ has changes not committed). */
const git = spawnSync("sh", ["-c", "git rev-parse --short HEAD && git status --porcelain -- src | head -1"], { cwd: ROOT, encoding: "utf8" }).stdout.split("\n");
const commit = `${git[0] || "?"}${git[1] ? "+" : ""}`;
console.error(
  `soak: seed ${seed} (replay with --seed ${seed}), ${MEMBERS} members, ${minutes} min of churn every ~${churnMs / 1000} s, a config write every ~${writeMs / 1000} s over ${soakKeys} keys, ` +
    `evict_after ${evictAfterS} s; Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}; commit ${commit}; load ${loadAtStart}`,
);
const tStart = performance.now();
const r = await run();
const totalS = Math.round((performance.now() - tStart) / 1000);

// ---- report ----

const eventsByKind: Record<string, { count: number; voters: number; failed: number; wholeMedianS: number | null; wholeMaxS: number | null }> = {};
for (const kind of CHURN_KINDS) {
  const es = events.filter((e) => e.kind === kind);
  if (es.length === 0) continue;
  const wholeS = es.map((e) => e.wholeS).filter((x): x is number => x !== null);
  eventsByKind[kind] = {
    count: es.length,
    voters: es.filter((e) => e.role === "voter" || e.role === "leader").length,
    failed: es.filter((e) => e.error !== undefined || e.wholeS === null).length,
    wholeMedianS: wholeS.length ? median(wholeS)! : null,
    wholeMaxS: wholeS.length ? Math.max(...wholeS) : null,
  };
}
const writeCounts = {
  set: writes.filter((w) => w.value !== null).length,
  delete: writes.filter((w) => w.value === null).length,
  ok: writes.filter((w) => w.outcome === "ok").length,
  queued: writes.filter((w) => w.outcome === "queued").length,
  unknown: writes.filter((w) => w.outcome === "unknown").length,
};
const lastSample = samples[samples.length - 1];
const compactedAtEnd = lastSample?.compactRevision ?? null;
const pass = r.allAlive && r.db?.bounded === true && r.lostConfigWrites === 0 && r.readErrors.length === 0 && failures.length === 0;

console.log(
  `\nSoak, seed ${seed}: ${MEMBERS} members, ${r.churnMinutes ?? 0} min of churn, Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}, load at start ${loadAtStart}; formed in ${r.formationS ?? "-"} s, ${totalS} s in all`,
);
console.log("Per minute (db, in use: the largest over the voters; live: keys and values under raptiformica/; compacted: the revision etcd's history was compacted to):");
console.log(
  ["min".padStart(6), "alive".padStart(5), "voters".padStart(6), "quorum".padStart(6), "db MB".padStart(7), "in use MB".padStart(9), "keys".padStart(5), "live KB".padStart(7), "revision".padStart(8), "compacted".padStart(9), "agents".padStart(6), "  out", "  load"].join(" "),
);
for (const s of samples) {
  console.log(
    [
      s.t.toFixed(1).padStart(6),
      String(s.alive ?? "?").padStart(5),
      String(s.voters.length).padStart(6),
      String(s.quorum ?? "?").padStart(6),
      mb(s.totalBytes).padStart(7),
      mb(s.inUseBytes).padStart(9),
      String(s.keys ?? "?").padStart(5),
      (s.liveBytes === null ? "?" : (s.liveBytes / 1024).toFixed(1)).padStart(7),
      String(s.revision ?? "?").padStart(8),
      String(s.compactRevision === null ? "?" : s.compactRevision < 0 ? "-" : s.compactRevision).padStart(9),
      String(s.agents).padStart(6),
      `  ${s.out ?? "-"}`,
      `  ${s.load}${s.noQuorumAnswers ? `  (${s.noQuorumAnswers} answer(s) without quorum first)` : ""}${s.error ? `  (${s.error})` : ""}`,
    ].join(" "),
  );
}
console.log("churn events (kind: count, of them voters; failed; cluster whole again after, median / max):");
for (const [kind, e] of Object.entries(eventsByKind)) {
  console.log(`  ${kind.padEnd(14)} ${e.count} (${e.voters} voters); failed ${e.failed}; whole again ${e.wholeMedianS ?? "-"} / ${e.wholeMaxS ?? "-"} s`);
}
console.log(`config writes: ${writeCounts.set} set, ${writeCounts.delete} delete; acknowledged ${writeCounts.ok}, queued ${writeCounts.queued}, unknown outcome ${writeCounts.unknown}`);
if (appRate > 0) console.log(`app writer (puts to ${APP_KEY}, ~${appRate}/s): acknowledged ${r.app.ok}, failed ${r.app.failed}`);
console.log(`agent restarts seen (pid changed on a member the soak did not touch): ${agentRestarts.length}${agentRestarts.length ? ` (${agentRestarts.map((a) => `${a.member} at ${a.t} s`).join(", ")})` : ""}`);
for (const f of failures) console.log(`FAILED at ${f.t} s: ${f.step}: ${f.error}`);
for (const m of r.mismatches.slice(0, 20)) {
  const queued = writes.find((x) => x.key === m.key && x.value === m.read && x.outcome === "queued");
  console.log(
    `LOST ${m.member} ${m.key}: read ${JSON.stringify(m.read)}, last acknowledged ${JSON.stringify(m.expected.last)}${m.expected.also.length ? ` (or ${JSON.stringify(m.expected.also)})` : ""}` +
      `${queued ? ` — the value of a write queued on ${queued.member} at ${queued.at} s, pushed over a later acknowledged one` : ""}`,
  );
}
for (const e of r.readErrors.slice(0, 10)) console.log(`UNREAD ${e}`);
console.log(`allAlive: ${r.allAlive} (${r.finalWhole}; agents running ${r.agentsRunningAtEnd}/${MEMBERS})`);
console.log(
  `dbBounded: ${r.db?.bounded ?? false} (in use, largest over the voters: ${mb(r.db?.secondQuarterMaxBytes ?? null)} MB in the second quarter, ${mb(r.db?.lastQuarterMaxBytes ?? null)} MB in the last, ${r.db?.ratio ?? "-"}× of ${dbFactor}× allowed; ` +
    `keys but the soak's own ${r.db?.keysAtStart ?? "-"} at the start, ${r.db?.keysAtEnd ?? "-"} at the end; ${r.db?.why ?? "not reached"})`,
);
if (r.db && !r.db.bounded && (compactedAtEnd === null || compactedAtEnd < 0)) {
  console.log(
    `  etcd compacted no history during the run (revision ${lastSample?.revision ?? "?"} at the end; it keeps the last ${AUTO_COMPACTION_REVISIONS} revisions, checked every 5 minutes): the in-use size grows with the history until then`,
  );
}
console.log(`lostConfigWrites: ${r.lostConfigWrites} (keys checked ${new Set(writes.map((w) => w.key)).size} on ${MEMBERS} members; read errors ${r.readErrors.length}; answered from a member's cache ${r.cachedReads})`);
console.log(pass ? "PASS" : "FAIL");
console.log(
  JSON.stringify({
    bench: "soak",
    seed,
    members: MEMBERS,
    voters: VOTERS,
    minutes,
    churnMinutes: r.churnMinutes,
    options: { churnSeconds: churnMs / 1000, writeSeconds: writeMs / 1000, keys: soakKeys, evictAfterSeconds: evictAfterS, voterShare, recoverSeconds: recoverMs / 1000, dbFactor, appWritesPerSecond: appRate },
    pass,
    allAlive: r.allAlive,
    dbBounded: r.db?.bounded ?? false,
    lostConfigWrites: r.lostConfigWrites,
    goals: { allAlive: true, dbBounded: true, lostConfigWrites: 0 },
    db: r.db,
    agentRestarts,
    agentsRunningAtEnd: r.agentsRunningAtEnd,
    finalWhole: r.finalWhole,
    eventsByKind,
    events,
    writes: writeCounts,
    appWrites: r.app,
    compactRevisionAtEnd: compactedAtEnd,
    mismatches: r.mismatches,
    readErrors: r.readErrors,
    cachedReads: r.cachedReads,
    failures,
    series: samples,
    formationS: r.formationS,
    totalS,
    stack,
    commit,
    loadAtStart,
    logs: keepLogsDir || null,
  }),
);
process.exit(pass ? 0 : 1);
