/**
 * Benchmark: false alarms on a loaded but healthy cluster. Fast failure detection and voter
 * replacement are worth little if a slow member is shown failed or replaced while it is merely
 * busy: this run gives every member its chance and counts every time it was not given.
 *
 * A lab cluster of `--members` (10) on one L2 segment, `meshnet/etcd/max_voters` `--max-voters`
 * (5), formed and left to settle; then for `--minutes` (30) `--hogs` (one per core) busy loops
 * on the host take the CPU from the members — nobody is killed, cut off or leaves. Throughout:
 * - a watch on `raptiformica/nodes/` from two members' namespaces (bench/lib/record-watch.ts):
 *   every deleted node record is a member shown failed (`recordDeletes`, goal 0);
 * - `members --json` every `--poll-seconds` (10) on the members in turn: a member shown
 *   anything but alive (`notAlivePolls`), or a poll without quorum (`noQuorumPolls`);
 * - at the end: the voter log entries written during the window (`voterChanges`, goal 0: no
 *   voter replaced or removed), agents that started more than once (`agentRestarts`, goal 0:
 *   agent.log "agent started"), and the failure watch's revocations (agent.log).
 *
 *   node --import tsx bench/false-alarms.ts [--members 10] [--max-voters 5] [--minutes 30] [--hogs N]
 *        [--poll-seconds 10] [--settle-seconds 30] [--keep-logs DIR] [--kill-one]
 *
 * `--kill-one` checks the bench itself: the last member is killed halfway through, a real
 * failure the run must then count (record deleted, polls showing it failed) and fail on.
 * Every wait is bounded; the lab and the hogs go on exit (also on Ctrl-C or a failure).
 * `--keep-logs DIR` copies every member's logs there first. Needs root, yggdrasil and etcd
 * (RAPTIFORMICA_LAB_PATH as for every lab benchmark); `npm run build` first. Prints a table
 * and a JSON line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Lab } from "../test/lab/index.ts";
import { LabCluster } from "../test/helpers/cluster.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { brief, labStack, loadAverage, numOpt, sleep, strOpt } from "./lib/common.ts";

const N = numOpt("--members", 10);
const maxVoters = numOpt("--max-voters", 5);
const minutes = numOpt("--minutes", 30);
const hogCount = numOpt("--hogs", availableParallelism());
const pollSeconds = numOpt("--poll-seconds", 10);
const settleSeconds = numOpt("--settle-seconds", 30);
const keepLogs = strOpt("--keep-logs", "");
/** A check of the bench itself: the last member is killed halfway, and the run must report it (and fail). */
const killOne = process.argv.includes("--kill-one");

if (!existsSync(join(ROOT, "dist", "raptiformica.mjs"))) {
  console.error("run `npm run build` first: the lab runs bin/raptiformica → dist/");
  process.exit(2);
}

interface Poll {
  t: number;
  from: string;
  quorum: boolean;
  notAlive: string[];
  voters: number;
  error?: string;
}

interface WatchLine {
  t: number;
  type: "watching" | "put" | "delete" | "error";
  key?: string;
  error?: string;
}

function watchLines(path: string): WatchLine[] {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as WatchLine);
  } catch {
    return [];
  }
}

function agentLog(lab: Lab, i: number): string[] {
  try {
    return readFileSync(join(lab.nodes[i]!.cacheDir, "node", "log", "agent.log"), "utf8").split("\n");
  } catch {
    return [];
  }
}

const expectedVoters = Math.min(maxVoters, N % 2 === 1 ? N : N - 1);
const stack = labStack();
console.error(`false alarms: ${N} members (max ${maxVoters} voters), ${minutes} min under ${hogCount} CPU hog(s); Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}; load ${loadAverage()}`);
const lab = await Lab.create({ nodes: N, topology: "full" });
const hogs: ChildProcess[] = [];
const stopHogs = () => {
  for (const h of hogs) if (h.exitCode === null) h.kill("SIGKILL");
};
process.on("exit", stopHogs);
try {
  const tForm = performance.now();
  const c = await new LabCluster(lab).form(N, { config: { "meshnet/etcd/max_voters": String(maxVoters) }, joins: "together", aliveTimeoutMs: 240_000, voters: expectedVoters, votersTimeoutMs: 240_000 });
  const formedS = Math.round((performance.now() - tForm) / 100) / 10;
  console.error(`  formed in ${formedS} s; settling ${settleSeconds} s`);
  await sleep(settleSeconds * 1000);

  const watchers = [0, N - 1].map((i) => {
    lab.spawn(i, [process.execPath, "--import", "tsx", join(ROOT, "bench", "lib", "record-watch.ts"), "--tls-dir", join(lab.nodes[i]!.cacheDir, "node", "etcd", "tls"), "--seconds", String(minutes * 60 + 60)], { label: "record-watch", cwd: ROOT });
    return join(lab.nodes[i]!.dir, "logs", "record-watch.log");
  });
  const ready = performance.now();
  while (!watchers.every((w) => watchLines(w).some((l) => l.type === "watching"))) {
    if (performance.now() - ready > 60_000) throw new Error("the record watchers did not start within 60 s");
    await sleep(500);
  }
  const startsBefore = lab.nodes.map((_, i) => agentLog(lab, i).filter((l) => /^(\S+Z )?agent started/.test(l)).length);

  for (let k = 0; k < hogCount; k++) hogs.push(spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  const windowStart = Date.now();
  const windowEnd = windowStart + minutes * 60_000;
  const polls: Poll[] = [];
  const loads: string[] = [];
  let lastLoad = 0;
  let killed = false;
  for (let k = 0; Date.now() < windowEnd; k++) {
    if (killOne && !killed && Date.now() >= windowStart + (windowEnd - windowStart) / 2) {
      killed = true;
      await lab.killNode(N - 1);
      console.error(`  killed n${N - 1} (--kill-one)`);
    }
    const i = k % (killed ? N - 1 : N);
    const t = Date.now();
    try {
      const m = await c.members(i);
      polls.push({ t, from: `n${i}`, quorum: m.quorum, notAlive: m.members.filter((x) => x.status !== "alive").map((x) => `${x.name}:${x.status}`), voters: m.members.filter((x) => x.status === "alive" && (x.role === "voter" || x.role === "leader")).length });
    } catch (e) {
      polls.push({ t, from: `n${i}`, quorum: false, notAlive: [], voters: 0, error: brief(e) });
    }
    const p = polls.at(-1)!;
    if (!p.quorum || p.notAlive.length > 0) console.error(`  +${Math.round((t - windowStart) / 1000)} s from ${p.from}: ${p.error ?? (p.quorum ? "" : "no quorum ")}${p.notAlive.join(", ")}`);
    if (t - lastLoad >= 60_000) {
      lastLoad = t;
      loads.push(loadAverage());
      console.error(`  +${Math.round((t - windowStart) / 60_000)} min: load ${loads.at(-1)}, ${polls.length} polls`);
    }
    await sleep(Math.max(0, pollSeconds * 1000 - (Date.now() - t)));
  }
  stopHogs();

  const final = await c.rf(0, ["members", "--json"], 60_000);
  const voterLog = final.exitCode === 0 ? ((JSON.parse(final.stdout) as { voterChanges?: { time: string; change: string }[] }).voterChanges ?? []) : [];
  const voterChanges = voterLog.filter((e) => Date.parse(e.time) >= windowStart);
  const events = watchers.map((w) => watchLines(w).filter((l) => l.t >= windowStart && l.t <= windowEnd));
  const deletes = events.map((ev) => ev.filter((l) => l.type === "delete").map((l) => ({ t: l.t, key: l.key })));
  const names = new Map<string, string>();
  for (let i = 0; i < N; i++) names.set((await c.identity(i)).publicKey, `n${i}`);
  const named = (key?: string) => names.get((key ?? "").split("/").at(-1) ?? "") ?? key ?? "?";
  const recordDeletes = Math.max(...deletes.map((d) => d.length));
  const agentRestarts = lab.nodes.map((_, i) => agentLog(lab, i).filter((l) => /^(\S+Z )?agent started/.test(l)).length - startsBefore[i]!).reduce((a, b) => a + b, 0);
  const revocations = lab.nodes.flatMap((_, i) => agentLog(lab, i).filter((l) => /its node record is ended now/.test(l)).map((l) => `n${i}: ${l.slice(0, 200)}`));
  const notAlivePolls = polls.filter((p) => p.notAlive.length > 0);
  const noQuorumPolls = polls.filter((p) => !p.quorum);
  const wrongVoterPolls = polls.filter((p) => p.quorum && p.voters !== expectedVoters);

  const result = {
    bench: "false-alarms",
    stack,
    members: N,
    maxVoters,
    minutes,
    hogs: hogCount,
    killedOne: killed,
    formedS,
    loads,
    polls: polls.length,
    recordDeletes,
    recordDeletesSeen: deletes.map((d) => d.map((x) => ({ t: new Date(x.t).toISOString(), member: named(x.key) }))),
    watchRestarts: events.map((ev) => ev.filter((l) => l.type === "watching").length),
    notAlivePolls: notAlivePolls.length,
    noQuorumPolls: noQuorumPolls.length,
    wrongVoterCountPolls: wrongVoterPolls.length,
    voterChanges,
    agentRestarts,
    failureWatchRevocations: revocations,
    ok: recordDeletes === 0 && notAlivePolls.length === 0 && voterChanges.length === 0 && agentRestarts === 0,
  };
  console.log(`\nFalse alarms: ${N} members (max ${maxVoters} voters), ${minutes} min under ${hogCount} CPU hog(s), Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}; formed in ${formedS} s`);
  console.log(`  load (1/5/15 min) each minute: ${loads.join(" | ")}`);
  const rows: [string, string | number, string][] = [
    ["node records deleted (member shown failed)", recordDeletes, "0"],
    ["members polls showing a member not alive", `${notAlivePolls.length} of ${polls.length}`, "0"],
    ["members polls without quorum", `${noQuorumPolls.length} of ${polls.length}`, "0"],
    [`members polls with other than ${expectedVoters} alive voters`, `${wrongVoterPolls.length} of ${polls.length}`, ""],
    ["voter changes (replacements, removals)", voterChanges.length, "0"],
    ["agent restarts", agentRestarts, "0"],
    ["failure-watch revocations", revocations.length, "0"],
  ];
  for (const [what, v, goal] of rows) console.log(`  ${what.padEnd(48)} ${String(v).padStart(12)}   goal ${goal || "-"}`);
  for (const d of result.recordDeletesSeen.flat()) console.log(`  record deleted: ${d.member} at ${d.t}`);
  for (const v of voterChanges) console.log(`  voter change: ${v.time} ${v.change}`);
  for (const r of revocations) console.log(`  ${r}`);
  console.log(JSON.stringify(result));
  process.exitCode = result.ok ? 0 : 1;
} finally {
  stopHogs();
  if (keepLogs) {
    lab.copyLogs(keepLogs);
    console.error(`logs copied to ${keepLogs}`);
  }
  await lab.destroy();
}
