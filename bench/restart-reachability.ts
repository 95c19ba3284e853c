/**
 * Benchmark: after members' Yggdrasil restarts, how long until every member reaches every other
 * over the mesh again? Each run: a fresh 3-node lab cluster; once it has formed, n0's yggdrasil
 * is stopped (SIGTERM, as the agent's own restarts do) and the agent starts it again, then n1's
 * `--gap` seconds later (default 4: two restarts close together, as a join burst or a calm
 * restart round makes them); then every 0.7 s each of the 6 directed pairs pings the other's
 * mesh address (`ping -6 -c1 -W1`), until all 6 answer in one round or `--bound` seconds (120).
 *
 *   node --import tsx bench/restart-reachability.ts [--runs 3] [--gap 4] [--bound 120]
 *
 * Why: on Yggdrasil 0.5.12 a restarted member was seen to stay cut off for minutes with every
 * peering "Up" (README, "Moving and breaking links"). A run that takes longer than 30 s writes
 * what each member's yggdrasil says (getPeers, getSessions, getPaths, getTree) and the logs'
 * tails to test-artifacts/restart-reachability/run-N.txt. The members run the yggdrasil and
 * etcd on their PATH, RAPTIFORMICA_LAB_PATH first (README, "Benchmarks"). Needs root; `npm run
 * build` first. Prints a table and a JSON line.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Lab } from "../test/lab/index.ts";
import { LabCluster } from "../test/helpers/cluster.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { brief, fmtS, labStack, loadAverage, max, median, numOpt, sec, sleep, tailLines, yggdrasilPid } from "./lib/common.ts";

const runs = numOpt("--runs", 3);
const gapMs = numOpt("--gap", 4) * 1000;
const boundMs = numOpt("--bound", 120) * 1000;
const PAIRS = [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]] as const;
const artifacts = join(ROOT, "test-artifacts", "restart-reachability");

interface Run {
  run: number;
  /** From n0's stop to the first round in which all 6 pairs answered; undefined: not within the bound. */
  reachableMs?: number;
  error?: string;
}

/** Stops node i's yggdrasil (SIGTERM) and waits until the agent has started another one (≤ 20 s). */
async function stopAndAwaitNewYggdrasil(lab: Lab, i: number): Promise<void> {
  const old = yggdrasilPid(lab, i);
  if (old === undefined) throw new Error(`no yggdrasil runs in ${lab.nodes[i]!.name}`);
  process.kill(old, "SIGTERM");
  const t0 = performance.now();
  while (performance.now() - t0 < 20_000) {
    const now = yggdrasilPid(lab, i);
    if (now !== undefined && now !== old) return;
    await sleep(100);
  }
  throw new Error(`${lab.nodes[i]!.name}: no new yggdrasil within 20 s of stopping the old one`);
}

/** What each member's yggdrasil says about the mesh, and the tails of its logs. */
async function snapshot(lab: Lab, ctl: string): Promise<string> {
  const out: string[] = [];
  for (const [i, n] of lab.nodes.entries()) {
    const sock = `unix://${join(n.cacheDir, "node", "run", "ygg.sock")}`;
    for (const cmd of ["getPeers", "getSessions", "getPaths", "getTree"]) {
      const r = await lab.exec(i, [ctl, "-endpoint", sock, cmd]);
      out.push(`---- ${n.name} ${cmd}\n${r.stdout}${r.stderr}`);
    }
    for (const f of ["agent.log", "yggdrasil.log"]) out.push(`---- ${n.name} ${f}\n${tailLines(join(n.cacheDir, "node", "log", f), 30).join("\n")}`);
  }
  return out.join("\n");
}

const stack = labStack();
const results: Run[] = [];
for (let run = 1; run <= runs; run++) {
  const lab = await Lab.create({ nodes: 3, topology: "full" });
  try {
    const c = await new LabCluster(lab).form(3);
    const addresses = await Promise.all([0, 1, 2].map(async (k) => (await c.identity(k)).meshAddress));
    const binary = (await lab.exec(0, ["sh", "-c", "command -v yggdrasil"])).stdout.trim();
    const ctl = join(dirname(binary), "yggdrasilctl");
    const t0 = performance.now();
    await stopAndAwaitNewYggdrasil(lab, 0);
    await sleep(Math.max(0, gapMs - (performance.now() - t0)));
    await stopAndAwaitNewYggdrasil(lab, 1);
    let reachableMs: number | undefined;
    let dumped = false;
    while (performance.now() - t0 < boundMs) {
      const answers = await Promise.all(PAIRS.map(async ([i, j]) => (await lab.exec(i, ["ping", "-6", "-c1", "-W1", addresses[j]!])).exitCode === 0));
      if (answers.every(Boolean)) {
        reachableMs = performance.now() - t0;
        break;
      }
      if (!dumped && performance.now() - t0 > 30_000) {
        dumped = true;
        mkdirSync(artifacts, { recursive: true });
        const file = join(artifacts, `run-${run}.txt`);
        writeFileSync(file, `unreachable pairs: ${PAIRS.filter((_, k) => !answers[k]).map(([i, j]) => `n${i}→n${j}`).join(" ")}\n${await snapshot(lab, ctl)}\n`);
        process.stderr.write(`run ${run}: still unreachable 30 s after the restarts; the mesh's state is in ${file}\n`);
      }
      await sleep(700);
    }
    results.push({ run, reachableMs });
    process.stderr.write(`run ${run}: ${reachableMs === undefined ? `not every pair reachable within ${boundMs / 1000} s` : `all reachable ${fmtS(sec(reachableMs))} after the first restart`} (load ${loadAverage()})\n`);
  } catch (e) {
    results.push({ run, error: brief(e) });
    process.stderr.write(`run ${run}: ${brief(e)}\n`);
  } finally {
    await lab.destroy();
  }
}

const times = results.flatMap((r) => (r.reachableMs === undefined ? [] : [r.reachableMs]));
console.log(`\nevery member reaches every other over the mesh again after n0's and n1's yggdrasil restarted ${gapMs / 1000} s apart (Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}; 3-node lab)`);
console.log("run  reachable after (s)");
for (const r of results) console.log(`${String(r.run).padEnd(5)}${r.error ?? (r.reachableMs === undefined ? `not within ${boundMs / 1000} s` : fmtS(sec(r.reachableMs)))}`);
console.log(`median ${fmtS(sec(median(times) ?? NaN))}, worst ${fmtS(sec(max(times) ?? NaN))}, stuck ${results.filter((r) => !r.error && r.reachableMs === undefined).length} of ${runs}`);
console.log(
  JSON.stringify({
    bench: "restart-reachability",
    runs,
    gapMs,
    boundMs,
    yggdrasil: stack.yggdrasil,
    etcd: stack.etcd,
    reachableMs: results.map((r) => (r.reachableMs === undefined ? null : Math.round(r.reachableMs))),
    stuck: results.filter((r) => !r.error && r.reachableMs === undefined).length,
    failed: results.filter((r) => r.error).length,
  }),
);
