/**
 * One chaos run, shared by bench/chaos.ts and test/e2e/chaos.test.ts: a 5-member lab cluster
 * (3 voters, 2 proxies), the recorded workload on every member (test/chaos/workload.ts), faults
 * from the seeded schedule (test/chaos/faults.ts) one after another — each held, healed, and
 * followed by a wait until the cluster is whole again (every member alive, 3 voters) — then the
 * checks: every acknowledged write present, each key's history linearizable, and per member and
 * fault kind the longest time its local endpoint did not answer while its side had quorum (a
 * member cut off by a partition or a flapping link counts from the heal on).
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LabCluster } from "../helpers/cluster.ts";
import { Lab, sleep, waitFor } from "../lab/index.ts";
import { FAULTS, quorumSide, schedule, type ChaosLab, type FaultKind, type Injected } from "./faults.ts";
import { lostWrites, stallsByKind, toOperations, type RecordedOp, type StallWindow } from "./history.ts";
import { checkHistory, describe, type KeyVerdict, type Operation } from "./linearizability.ts";
import { DEFAULT_WORKLOAD, Workload, type WorkloadOptions } from "./workload.ts";

const MEMBERS = 5;
const VOTERS = 3;
/** Faults whose targets stay alive, only cut off from the quorum side until the heal. */
const CUT_OFF_KINDS: ReadonlySet<FaultKind> = new Set(["partition-minority", "partition-majority", "link-flap"]);

/** The stall figure's window kind for the time between faults (the cluster whole, at rest). */
export const BETWEEN = "between faults";

export interface ChaosOptions {
  readonly seed: number;
  /** Faults are started until this much time has passed (the one running then is finished). */
  readonly durationMs: number;
  readonly kinds: readonly FaultKind[];
  /** Progress lines. */
  readonly log: (line: string) => void;
  readonly workload?: Partial<Omit<WorkloadOptions, "seed">>;
  /** Longest wait for the cluster to be whole again after a fault (default 120 s). */
  readonly recoverTimeoutMs?: number;
  /** Workload after the last fault and recovery, so every member reads the final values (default 10 s). */
  readonly settleMs?: number;
  /** The checker's limit per key (default 60 s). */
  readonly checkTimeLimitMs?: number;
  /** The search's limit per key when it only confirms the zone test (default 10 s). */
  readonly searchTimeLimitMs?: number;
  /** Where to write the history (JSON lines); without it, written to the temp dir only when a check failed. */
  readonly historyPath?: string;
  /** Copy every member's logs (agent, etcd, yggdrasil, workload) here before the lab is removed. */
  readonly keepLogsDir?: string;
}

/** One fault as it happened. Times in epoch ms. */
export interface FaultRecord {
  readonly kind: FaultKind;
  readonly targets: string[];
  readonly note: string;
  readonly start: number;
  /** Fault healed (routes removed, member started again…). */
  readonly healed: number;
  /** Cluster whole again; null when it was not within the recover timeout. */
  readonly recovered: number | null;
  readonly voters: string[];
  readonly quorumSide: string[];
  readonly error?: string;
}

export interface Violation {
  readonly key: string;
  readonly summary: string;
  /** describe() lines with the recorder's refs: the tail of the longest linearization, then the blocked operation. */
  readonly excerpt: string[];
}

export interface ChaosReport {
  readonly seed: number;
  readonly minutes: number;
  readonly operations: number;
  readonly operationsBy: Record<string, number>;
  readonly lost: number;
  readonly unexpected: number;
  readonly acknowledgedOnce: number;
  readonly nonLinearizable: number;
  /** Keys the checker could not decide within its limit. */
  readonly undecided: number;
  /** Longest stall per member over every window where its side had quorum (null: no figure). */
  readonly maxStallMs: Record<string, number | null>;
  readonly stallByKind: Record<string, Record<string, number>>;
  readonly faultCounts: Record<string, number>;
  readonly notRecovered: number;
  readonly cachedReads: number;
  readonly checkerMs: number;
  /** Per key: the verdict, what decided it, and the search's own verdict beside it. */
  readonly keys: { key: string; result: KeyVerdict["result"]; method: KeyVerdict["method"]; search: KeyVerdict["result"]; operations: number; searched: number; ms: number }[];
  /** Keys where the zone test and the search reached different verdicts (a checker bug). */
  readonly checkerDisagreements: string[];
  readonly violations: Violation[];
  readonly lostWrites: string[];
  readonly faults: FaultRecord[];
  readonly formationS: number;
  readonly historyFile?: string;
}

interface Whole {
  ok: boolean;
  voters: number[];
  detail: string;
}

/** Asks member `i` whether the cluster is whole: quorum, every member alive, VOTERS healthy voters. */
async function wholeFrom(c: LabCluster, i: number): Promise<Whole> {
  try {
    const m = await c.members(i);
    const alive = m.members.filter((x) => x.status === "alive").length;
    const voters = m.members.filter((x) => x.status === "alive" && (x.role === "voter" || x.role === "leader")).map((x) => Number(x.name.slice(1)));
    const ok = m.quorum && alive === MEMBERS && voters.length === VOTERS;
    return { ok, voters, detail: `from n${i}: quorum ${m.quorum}, ${alive} alive, voters ${voters.map((v) => `n${v}`).join(",") || "none"}` };
  } catch (e) {
    return { ok: false, voters: [], detail: `from n${i}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}` };
  }
}

async function waitWhole(c: LabCluster, timeoutMs: number): Promise<Whole> {
  const until = Date.now() + timeoutMs;
  let last: Whole = { ok: false, voters: [], detail: "not asked" };
  for (let k = 0; Date.now() < until; k++) {
    last = await wholeFrom(c, k % MEMBERS);
    if (last.ok) return last;
    await sleep(500);
  }
  return last;
}

async function formCluster(c: LabCluster): Promise<void> {
  await c.form(MEMBERS, { config: { "meshnet/etcd/max_voters": String(VOTERS) }, joins: "together", aliveTimeoutMs: 120_000 });
  await waitFor(`${VOTERS} voters`, async () => (await wholeFrom(c, 0)).ok, { timeoutMs: 120_000, intervalMs: 500 });
}

const name = (i: number) => `n${i}`;
const brief = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 300);

/**
 * Runs the whole thing on a lab of its own (removed at the end, whatever happens).
 * @throws Error when the cluster cannot be formed or the workload does not start; faults that
 *   fail or a cluster that does not recover are recorded in the report instead.
 */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log;
  const recoverTimeoutMs = opts.recoverTimeoutMs ?? 120_000;
  const wopts: WorkloadOptions = { ...DEFAULT_WORKLOAD, ...opts.workload, seed: opts.seed };
  const lab = await Lab.create({ nodes: MEMBERS, topology: "full" });
  let workload: Workload | undefined;
  try {
    const c = new LabCluster(lab);
    const cl: ChaosLab = { c, addresses: lab.nodes.map((n) => lab.addressOf(n.index)), moves: 0 };
    const tf = performance.now();
    await formCluster(c);
    const formationS = Math.round((performance.now() - tf) / 100) / 10;
    log(`cluster of ${MEMBERS} formed in ${formationS} s (lab ${lab.id})`);

    workload = new Workload(c, wopts);
    workload.start();
    await workload.waitAnswering(5, 60_000);
    log("workload running on every member");

    const faults: FaultRecord[] = [];
    const windows: StallWindow[] = [];
    const plans = schedule(opts.seed, opts.kinds, MEMBERS);
    let whole = await waitWhole(c, recoverTimeoutMs);
    const t0 = Date.now();
    let calmFrom = t0;
    const rel = (t: number) => `${((t - t0) / 1000).toFixed(1)} s`;
    while (Date.now() - t0 < opts.durationMs) {
      const plan = plans.next().value;
      const side = quorumSide(plan, whole.voters, MEMBERS);
      const start = Date.now();
      for (const n of lab.nodes) windows.push({ member: n.name, kind: BETWEEN, from: calmFrom, to: start });
      let injected: Injected | undefined;
      let error: string | undefined;
      try {
        injected = await FAULTS[plan.kind](cl, plan);
      } catch (e) {
        error = `inject: ${brief(e)}`;
      }
      if (plan.holdMs > 0) await sleep(plan.holdMs);
      try {
        await injected?.heal();
      } catch (e) {
        error ??= `heal: ${brief(e)}`;
      }
      const healed = Date.now();
      const after = await waitWhole(c, recoverTimeoutMs);
      const recovered = after.ok ? Date.now() : null;
      // The quorum side from the fault on. The members cut off from it (alive all along) from
      // the heal on: they have a quorum again then, and how soon they answer counts too. A
      // member killed or restarted is booting after the heal, which is not a stall.
      for (const [i, n] of lab.nodes.entries()) {
        if (side.includes(i)) windows.push({ member: n.name, kind: plan.kind, from: start, to: recovered ?? Date.now() });
        else if (CUT_OFF_KINDS.has(plan.kind)) windows.push({ member: n.name, kind: plan.kind, from: healed, to: recovered ?? Date.now() });
      }
      const rec: FaultRecord = {
        kind: plan.kind,
        targets: plan.targets.map(name),
        note: injected?.note ?? "",
        start,
        healed,
        recovered,
        voters: whole.voters.map(name),
        quorumSide: side.map(name),
        ...(error ? { error } : {}),
      };
      faults.push(rec);
      log(
        `[${rel(start)}] ${plan.kind}: ${rec.note}${error ? ` — ${error}` : ""}; healed after ${((healed - start) / 1000).toFixed(1)} s, ` +
          (recovered ? `whole again after ${((recovered - start) / 1000).toFixed(1)} s` : `NOT whole within ${recoverTimeoutMs / 1000} s (${after.detail})`),
      );
      whole = after.ok ? after : { ...after, voters: after.voters.length ? after.voters : whole.voters };
      calmFrom = Date.now();
      await sleep(plan.pauseMs);
    }
    const finalWhole = await waitWhole(c, recoverTimeoutMs);
    const faultsEnd = Date.now();
    for (const n of lab.nodes) windows.push({ member: n.name, kind: BETWEEN, from: calmFrom, to: faultsEnd });
    log(`faults over after ${rel(faultsEnd)}; ${finalWhole.ok ? "cluster whole" : `cluster NOT whole (${finalWhole.detail})`}; letting the workload read the final values`);
    await sleep(opts.settleMs ?? 10_000);
    await workload.stop();

    // Every acknowledged write present: read on the first member that answers.
    let present: Record<string, string> | undefined;
    let readError = "";
    for (const n of lab.nodes) {
      try {
        present = await workload.readOnceKeys(n.index);
        break;
      } catch (e) {
        readError = brief(e);
      }
    }
    const { recorded, answers } = workload.collect();
    const onceCheck = present ? lostWrites(recorded, wopts.oncePrefix, present) : undefined;

    const { ops, refs } = toOperations(recorded, wopts.oncePrefix);
    const tc = performance.now();
    const verdicts = checkHistory(ops, { timeLimitMs: opts.checkTimeLimitMs ?? 60_000 });
    // A second opinion where the zone test decided: the search, bounded (it may not finish on a
    // stalled endpoint's pile of concurrent writes). Two verdicts that differ are a checker bug.
    const second = new Map(checkHistory(ops, { method: "search", timeLimitMs: opts.searchTimeLimitMs ?? 10_000 }).map((v) => [v.key, v.result]));
    const disagreements = verdicts.filter((v) => v.method === "zones" && second.get(v.key) !== "unknown" && second.get(v.key) !== v.result).map((v) => v.key);
    const checkerMs = Math.round(performance.now() - tc);
    const violations = verdicts.filter((v) => v.result === "non-linearizable").map((v) => violation(v, refs));

    const stalls = stallsByKind(answers, windows);
    const maxStallMs: Record<string, number | null> = {};
    for (const n of lab.nodes) {
      const xs = [...stalls.values()].map((m) => m.get(n.name)).filter((x): x is number => x !== undefined);
      maxStallMs[n.name] = xs.length ? Math.round(Math.max(...xs)) : null;
    }
    const operationsBy: Record<string, number> = {};
    for (const r of recorded) {
      const k = `${r.process.split("/")[1]} ${r.f} ${r.outcome}`;
      operationsBy[k] = (operationsBy[k] ?? 0) + 1;
    }
    const faultCounts: Record<string, number> = {};
    for (const f of faults) faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;

    const report: ChaosReport = {
      seed: opts.seed,
      minutes: Math.round(((faultsEnd - t0) / 60_000) * 100) / 100,
      operations: recorded.length,
      operationsBy,
      lost: onceCheck ? onceCheck.lost.length : -1,
      unexpected: onceCheck?.unexpected.length ?? -1,
      acknowledgedOnce: onceCheck?.acknowledged ?? 0,
      nonLinearizable: violations.length,
      undecided: verdicts.filter((v) => v.result === "unknown").length,
      maxStallMs,
      stallByKind: Object.fromEntries([...stalls].map(([k, m]) => [k, Object.fromEntries([...m].map(([mm, ms]) => [mm, Math.round(ms)]))])),
      faultCounts,
      notRecovered: faults.filter((f) => f.recovered === null).length + (finalWhole.ok ? 0 : 1),
      cachedReads: workload.cachedReads,
      checkerMs,
      keys: verdicts.map((v) => ({ key: v.key, result: v.result, method: v.method, search: second.get(v.key) ?? "unknown", operations: v.operations, searched: v.searched, ms: v.ms })),
      checkerDisagreements: disagreements,
      violations,
      lostWrites: (onceCheck?.lost ?? []).slice(0, 20).map((w) => `${w.ref} ${w.key} [${w.invoke}, ${w.complete}]`),
      faults,
      formationS,
    };
    if (!present) log(`could not read the once-written keys on any member: ${readError}`);
    const failed = report.lost !== 0 || report.nonLinearizable > 0 || report.undecided > 0 || report.unexpected !== 0 || disagreements.length > 0;
    const historyFile = opts.historyPath ?? (failed ? join(tmpdir(), `raptiformica-chaos-${opts.seed}-${Date.now()}.jsonl`) : undefined);
    if (historyFile) {
      writeHistory(historyFile, report, recorded);
      return { ...report, historyFile };
    }
    return report;
  } finally {
    await workload?.stop();
    if (opts.keepLogsDir) lab.copyLogs(opts.keepLogsDir);
    await lab.destroy();
  }
}

function violation(v: KeyVerdict, refs: readonly string[]): Violation {
  const e = v.explanation!;
  const line = (o: Operation) => `${describe(o)} (${refs[o.id]})`;
  return {
    key: v.key,
    summary: e.summary,
    excerpt: [
      ...(e.linearized ?? []).map((o) => `linearized: ${line(o)}`),
      ...(e.blocked ? [`blocked: ${line(e.blocked)}`] : []),
      ...e.operations.slice(0, 12).map((o) => `involved: ${line(o)}`),
    ],
  };
}

/** The run as JSON lines: the report, then every recorded operation (for a look afterwards). */
function writeHistory(path: string, report: ChaosReport, recorded: readonly RecordedOp[]): void {
  const lines = [JSON.stringify({ report }), ...recorded.map((r) => JSON.stringify(r))];
  writeFileSync(path, `${lines.join("\n")}\n`);
}
