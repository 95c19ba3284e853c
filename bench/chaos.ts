/**
 * Benchmark: proof under chaos. A 5-member lab cluster (3 voters, 2 proxies) with a client
 * workload on every member — an etcd3 client on the local endpoint 127.0.0.1:2379 (reads, writes
 * of unique values to a few keys, writes of keys never overwritten) and `config set` /
 * `config get` through the CLI — while random faults hit it for `--minutes` (default 10): kill -9
 * of etcd, of the agent, of yggdrasil, of a whole member (restarted after a while); minority and
 * majority partitions; link flaps; a member moved to a new address; every member restarted at
 * once, several rounds in a row. The schedule comes from `--seed` (printed; random by default),
 * so a run can be replayed. Faults come one after another: each is held, healed, and the cluster
 * is waited for to be whole again (every member alive, 3 voters) before a short pause.
 *
 * Afterwards: every acknowledged write present (`lost`, goal 0); each key's history checked for
 * linearizability (test/chaos/linearizability.ts; `nonLinearizable`, goal 0); per member and
 * fault kind the longest time its local endpoint did not answer while its side had quorum
 * (a member cut off by a partition or a flapping link counts from the heal on) (`maxStallMs`,
 * goal ≤ 3 s). Prints a table and one JSON line; the whole history goes to
 * `--history FILE` (default: a file in the temp dir, printed).
 *
 *   node --import tsx bench/chaos.ts [--minutes 10] [--seed N] [--kinds kill-etcd,partition-minority,…] [--history FILE] [--keep-logs DIR]
 *
 * `--keep-logs DIR` copies every member's logs (agent, etcd, yggdrasil, workload) there before
 * the lab is removed, to look into a stall afterwards.
 *
 * Needs root, yggdrasil and etcd (RAPTIFORMICA_LAB_PATH as for every lab benchmark); `npm run
 * build` first.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAULT_KINDS, type FaultKind } from "../test/chaos/faults.ts";
import { BETWEEN, runChaos } from "../test/chaos/run.ts";
import { labStack, loadAverage, numOpt, requireLabBench, strOpt } from "./lib/common.ts";

const GOAL_STALL_MS = 3000;

requireLabBench(["ip", "yggdrasil", "etcd"]);

const minutes = numOpt("--minutes", 10);
const seed = numOpt("--seed", Math.floor(Math.random() * 2 ** 31));
const kinds = strOpt("--kinds", FAULT_KINDS.join(",")).split(",").filter(Boolean) as FaultKind[];
const unknownKinds = kinds.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k));
if (unknownKinds.length > 0) {
  console.error(`unknown fault kind(s) ${unknownKinds.join(", ")}; known: ${FAULT_KINDS.join(", ")}`);
  process.exit(2);
}
const historyPath = strOpt("--history", join(tmpdir(), `raptiformica-chaos-${seed}-${Date.now()}.jsonl`));
const keepLogsDir = strOpt("--keep-logs", "");

const stack = labStack();
const load = loadAverage();
console.error(`chaos run: seed ${seed} (replay with --seed ${seed}), ${minutes} min of faults (${kinds.join(", ")}); Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}; load ${load}`);
const t = performance.now();
const r = await runChaos({
  seed,
  durationMs: minutes * 60_000,
  kinds,
  historyPath,
  ...(keepLogsDir ? { keepLogsDir } : {}),
  log: (l) => console.error(`  ${l}`),
});
const totalS = Math.round((performance.now() - t) / 1000);

const members = Object.keys(r.maxStallMs).sort();
const cell = (ms: number | undefined | null) => (ms === undefined || ms === null ? "-" : `${(ms / 1000).toFixed(2)}${ms > GOAL_STALL_MS ? "!" : ""}`);
console.log(`\nChaos run, seed ${seed}: ${r.minutes} min of faults, Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}, load at start ${load}, ${totalS} s in all`);
console.log("Longest time (s) each member's local endpoint did not answer while its side had quorum (! over the 3 s goal):");
console.log(["fault kind".padEnd(20), "count".padStart(5), ...members.map((m) => m.padStart(7))].join(" "));
for (const kind of [...FAULT_KINDS, BETWEEN]) {
  const row = r.stallByKind[kind];
  const count = kind === BETWEEN ? "" : String(r.faultCounts[kind] ?? 0);
  if (!row && !r.faultCounts[kind]) continue;
  console.log([kind.padEnd(20), count.padStart(5), ...members.map((m) => cell(row?.[m]).padStart(7))].join(" "));
}
console.log(["worst".padEnd(20), "".padStart(5), ...members.map((m) => cell(r.maxStallMs[m]).padStart(7))].join(" "));
console.log(
  `operations ${r.operations} (${Object.entries(r.operationsBy)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}); cached config reads ${r.cachedReads}`,
);
console.log(`acknowledged once-written keys ${r.acknowledgedOnce}, lost ${r.lost}, unexpected ${r.unexpected}`);
console.log(`keys checked: ${r.keys.map((k) => `${k.key} ${k.result} (${k.method}; search: ${k.search}; ${k.operations} ops)`).join("; ")}`);
if (r.undecided > 0) console.log(`UNDECIDED: ${r.undecided} key(s) the checker could not decide within its limit`);
for (const k of r.checkerDisagreements) console.log(`CHECKER DISAGREEMENT on ${k}: the zone test and the search differ (a checker bug)`);
console.log(`faults not followed by a whole cluster within 120 s: ${r.notRecovered}`);
for (const f of r.faults.filter((x) => x.error || x.recovered === null)) console.log(`  ${f.kind} ${f.targets.join(",")}: ${f.error ?? "not recovered"}`);
for (const v of r.violations) console.log(`NOT LINEARIZABLE ${v.key}: ${v.summary}\n    ${v.excerpt.join("\n    ")}`);
for (const l of r.lostWrites) console.log(`LOST ${l}`);
console.log(`history: ${r.historyFile}`);
console.log(
  JSON.stringify({
    seed: r.seed,
    minutes: r.minutes,
    operations: r.operations,
    lost: r.lost,
    nonLinearizable: r.nonLinearizable,
    maxStallMs: r.maxStallMs,
    goals: { lost: 0, nonLinearizable: 0, maxStallMs: GOAL_STALL_MS },
    undecided: r.undecided,
    checkerDisagreements: r.checkerDisagreements,
    unexpected: r.unexpected,
    acknowledgedOnce: r.acknowledgedOnce,
    cachedReads: r.cachedReads,
    notRecovered: r.notRecovered,
    faultCounts: r.faultCounts,
    stallByKind: r.stallByKind,
    operationsBy: r.operationsBy,
    keys: r.keys,
    checkerMs: r.checkerMs,
    formationS: r.formationS,
    totalS,
    stack,
    loadAtStart: load,
    violations: r.violations,
    historyFile: r.historyFile,
  }),
);
process.exit(r.lost === 0 && r.nonLinearizable === 0 && r.undecided === 0 && r.checkerDisagreements.length === 0 ? 0 : 1);
