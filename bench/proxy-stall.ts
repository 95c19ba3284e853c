/**
 * Benchmark: after a voter is killed, the longest time any alive member's local KV endpoint
 * (https://127.0.0.1:<client port>, what apps on a member use) cannot answer a read or a write,
 * through etcd's own client (`etcdctl`, one process per operation, 1 s command timeout;
 * bench/lib/etcdctl-prober.sh). Goal ≤ 3 s on every member (issue: a proxy node's endpoint
 * stalled ~20 s with etcd 3.4, whose grpc-proxy has no keep-alive to its upstream).
 *
 * Each run: a 4-node lab cluster (meshnet/etcd/max_voters 3: 3 voters and 1 grpc-proxy node), a
 * prober on every node, then a voter killed with lab.killNode (SIGKILL of everything in its
 * namespace, yggdrasil too, so its TCP connections go silent rather than closed: the hard case)
 * — a follower voter, then (a fresh cluster) the leader. Figures are taken over `--window`
 * seconds (default 30) from the kill. Run with each etcd: the system's (Debian 12: 3.4) and
 * 3.5 from Debian trixie (scripts/fetch-etcd-3.5.sh puts it in /opt/raptiformica-test/etcd-3.5;
 * the lab nodes get it first on PATH). `--etcd system,3.5` picks; `--victims follower,leader`.
 *
 *   node --import tsx bench/proxy-stall.ts [--runs 1] [--window 30] [--etcd system,3.5] [--victims follower,leader]
 *
 * Needs root, yggdrasil, etcd; `npm run build` first. Prints a table and a JSON line.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor } from "../test/lab/index.ts";
import { LabCluster } from "../test/helpers/cluster.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { brief, healthyVoters, leaderOf, loadAverage, max, numOpt, roles, sleep, strOpt } from "./lib/common.ts";
import { longestStallMs, parseProbeLog } from "./lib/stall.ts";

const runs = numOpt("--runs", 1);
const windowS = numOpt("--window", 30);
const WARMUP_S = 5;
const GOAL_MS = 3000;
const variants = strOpt("--etcd", "system,3.5").split(",");
const victims = strOpt("--victims", "follower,leader").split(",") as ("follower" | "leader")[];
const PROBER = join(ROOT, "bench", "lib", "etcdctl-prober.sh");

if (!existsSync(join(ROOT, "dist", "raptiformica.mjs"))) {
  console.error("run `npm run build` first: the lab runs bin/raptiformica → dist/");
  process.exit(2);
}

/** PATH for the lab nodes of one variant, and the etcd version it gives. */
function variantPath(v: string): { path: string; version: string } {
  let dir = "";
  if (v === "3.5") {
    const r = spawnSync("sh", [join(ROOT, "scripts", "fetch-etcd-3.5.sh")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`scripts/fetch-etcd-3.5.sh exited ${r.status}: ${r.stderr.trim().split("\n").pop()}`);
    dir = r.stdout.trim().split("\n").pop() as string;
  } else if (v !== "system") {
    throw new Error(`--etcd takes system and/or 3.5, not ${v}`);
  }
  const path = [join(ROOT, "bin"), ...(dir ? [dir] : []), process.env["PATH"] ?? ""].join(":");
  const out = spawnSync("etcd", ["--version"], { encoding: "utf8", env: { PATH: path } });
  const version = /etcd Version: (\S+)/.exec(out.stdout)?.[1] ?? "unknown";
  return { path, version };
}

interface MemberFigure {
  node: string;
  role: string;
  putMs: number | null;
  getMs: number | null;
}

async function oneRun(v: string, path: string, victimKind: "follower" | "leader"): Promise<{ victim: string; members: MemberFigure[] }> {
  const lab = await Lab.create({ nodes: 4, topology: "full" });
  try {
    const c = await new LabCluster(lab, { PATH: path }).form(4, { config: { "meshnet/etcd/max_voters": "3" }, joins: "together", aliveTimeoutMs: 120_000 });
    await waitFor("3 voters and a proxy", async () => {
      const r = await roles(c, 0);
      return healthyVoters(r).length === 3 && Object.values(r).some((x) => x.role === "proxy");
    }, { timeoutMs: 120_000, intervalMs: 500 });
    const seconds = WARMUP_S + windowS + 3;
    const probers = lab.nodes.map((n, i) =>
      lab.spawn(i, ["sh", PROBER, join(n.cacheDir, "node", "etcd", "tls"), String(seconds)], { env: { PATH: path }, label: "prober" }),
    );
    await sleep(WARMUP_S * 1000);
    const r = await roles(c, 0);
    const leader = leaderOf(r);
    const voters = healthyVoters(r).map((name) => Number(name.slice(1)));
    const victim = victimKind === "leader" ? leader : voters.find((i) => i !== leader);
    if (victim === undefined) throw new Error(`no ${victimKind} voter among ${JSON.stringify(r)}`);
    const t0 = Date.now();
    await lab.killNode(victim);
    await sleep(windowS * 1000);
    const t1 = t0 + windowS * 1000;
    await Promise.all(probers.map((p, i) => (i === victim ? undefined : new Promise((res) => (p.exitCode !== null ? res(null) : p.once("exit", res))))));
    const members: MemberFigure[] = [];
    for (const [i, n] of lab.nodes.entries()) {
      if (i === victim) continue;
      const ops = parseProbeLog(readFileSync(join(n.dir, "logs", "prober.log"), "utf8"));
      members.push({
        node: n.name,
        role: r[n.name]?.role ?? "?",
        putMs: longestStallMs(ops, "put", t0, t1) ?? null,
        getMs: longestStallMs(ops, "get", t0, t1) ?? null,
      });
    }
    return { victim: `${lab.nodes[victim]!.name} (${victimKind})`, members };
  } finally {
    await lab.destroy();
  }
}

const rows: { etcd: string; victim: string; node: string; role: string; putMs: number | null; getMs: number | null }[] = [];
const summary: Record<string, Record<string, { maxStallMs: number | null; runs: number }>> = {};
for (const v of variants) {
  const { path, version } = variantPath(v);
  const label = `etcd ${version}`;
  for (const kind of victims) {
    const worst: number[] = [];
    for (let run = 1; run <= runs; run++) {
      console.error(`${label}, ${kind} killed, run ${run}/${runs} (load ${loadAverage()})`);
      try {
        const out = await oneRun(v, path, kind);
        for (const m of out.members) {
          rows.push({ etcd: label, victim: out.victim, ...m });
          console.error(`  ${m.node} (${m.role}): writes ${m.putMs ?? "never"} ms, reads ${m.getMs ?? "never"} ms`);
          worst.push(m.putMs ?? windowS * 1000, m.getMs ?? windowS * 1000);
        }
      } catch (e) {
        console.error(`  failed: ${brief(e)}`);
      }
    }
    (summary[label] ??= {})[kind] = { maxStallMs: max(worst) ?? null, runs };
  }
}

const pad = (s: string, n: number) => s.padEnd(n);
console.log(`${pad("etcd", 14)}${pad("voter killed", 18)}${pad("member", 8)}${pad("role", 8)}${pad("writes stall", 14)}reads stall   (goal ≤ ${GOAL_MS} ms)`);
for (const r of rows) {
  console.log(`${pad(r.etcd, 14)}${pad(r.victim, 18)}${pad(r.node, 8)}${pad(r.role, 8)}${pad(r.putMs === null ? "never" : `${r.putMs} ms`, 14)}${r.getMs === null ? "never" : `${r.getMs} ms`}`);
}
console.log(JSON.stringify({ windowSeconds: windowS, goalMs: GOAL_MS, maxStallMs: summary, members: rows }));
