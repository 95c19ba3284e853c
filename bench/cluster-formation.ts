/**
 * Benchmark: a 3-node lab cluster from nothing to 3 alive and a KV write replicated, then the
 * agent's idle footprint. Goals (2-core machine): formation < 10 s; agent idle RSS < 60 MB and
 * idle CPU < 1 % per node.
 *
 *   node --import tsx bench/cluster-formation.ts [--runs N] [--idle-seconds S]
 *
 * Needs root, yggdrasil and etcd (the lab uses network namespaces); the members run the ones on
 * their PATH, RAPTIFORMICA_LAB_PATH first (README, "Benchmarks"). Prints a table and JSON.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor } from "../test/lab/index.ts";
import { LabCluster } from "../test/helpers/cluster.ts";
import { TICK, labStack, procStat, yggdrasilPid } from "./lib/common.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const runs = opt("--runs", 3);
const idleSeconds = opt("--idle-seconds", 20);

async function formation(): Promise<{ ms: number; lab: Lab; c: LabCluster }> {
  const lab = await Lab.create({ nodes: 3, topology: "full" });
  const c = new LabCluster(lab);
  const t0 = performance.now();
  await c.first(0);
  await Promise.all([c.prepare(1), c.prepare(2)]);
  await Promise.all([c.rfOk(1, ["mesh", "--no-after-mesh"]), c.rfOk(2, ["mesh", "--no-after-mesh"])]);
  await waitFor("3 alive", async () => (await c.members(0)).members.filter((m) => m.status === "alive").length === 3, { timeoutMs: 60_000, intervalMs: 50 });
  await c.rfOk(0, ["config", "set", "bench/replicated", "yes"]);
  await waitFor(
    "write replicated",
    async () => (await Promise.all([1, 2].map((i) => c.rfOk(i, ["config", "get", "bench/replicated"])))).every((v) => v.trim() === "yes"),
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  return { ms: performance.now() - t0, lab, c };
}

const times: number[] = [];
let footprint: { node: string; rssMb: number; pssMb: number; privateMb: number; cpuPercent: number; yggdrasil: { rssMb: number; cpuPercent: number } | null }[] = [];
for (let r = 0; r < runs; r++) {
  const { ms, lab } = await formation();
  times.push(ms);
  if (r === runs - 1) {
    await new Promise((res) => setTimeout(res, 5000)); // let the voter manager settle
    const pids = lab.nodes.map((n) => Number(readFileSync(join(n.cacheDir, "node", "run", "agent.pid"), "utf8").trim()));
    const yggs = lab.nodes.map((_, i) => yggdrasilPid(lab, i));
    const before = pids.map(procStat);
    const yggBefore = yggs.map((p) => (p === undefined ? undefined : procStat(p)));
    await new Promise((res) => setTimeout(res, idleSeconds * 1000));
    const afterStats = pids.map(procStat);
    const yggAfter = yggs.map((p) => (p === undefined ? undefined : procStat(p)));
    footprint = lab.nodes.map((n, i) => ({
      node: n.name,
      rssMb: Math.round((afterStats[i]!.rssKb / 1024) * 10) / 10,
      pssMb: Math.round((afterStats[i]!.pssKb / 1024) * 10) / 10,
      privateMb: Math.round((afterStats[i]!.privateKb / 1024) * 10) / 10,
      cpuPercent: Math.round((((afterStats[i]!.cpuTicks - before[i]!.cpuTicks) / TICK) / idleSeconds) * 1000) / 10,
      yggdrasil:
        yggAfter[i] && yggBefore[i]
          ? {
              rssMb: Math.round((yggAfter[i]!.rssKb / 1024) * 10) / 10,
              cpuPercent: Math.round((((yggAfter[i]!.cpuTicks - yggBefore[i]!.cpuTicks) / TICK) / idleSeconds) * 1000) / 10,
            }
          : null,
    }));
  }
  await lab.destroy();
}

const sorted = [...times].sort((a, b) => a - b);
const stack = labStack();
const result = {
  stack,
  formationSeconds: { runs: times.map((t) => Math.round(t) / 1000), median: Math.round(sorted[Math.floor(sorted.length / 2)]!) / 1000, goal: 10 },
  agentIdle: { seconds: idleSeconds, nodes: footprint, goal: { rssMb: 60, cpuPercent: 1 } },
};
console.log(`3-node cluster formation (nothing → 3 alive + KV write replicated), Yggdrasil ${stack.yggdrasil}, etcd ${stack.etcd}`);
console.log(`  runs: ${result.formationSeconds.runs.map((s) => `${s.toFixed(2)} s`).join(", ")}   median: ${result.formationSeconds.median.toFixed(2)} s   goal: < 10 s`);
console.log(`agent at rest (${idleSeconds} s)`);
console.log("  node   RSS (MB)   PSS (MB)   private (MB)   CPU (%)   yggdrasil RSS (MB)   yggdrasil CPU (%)");
for (const f of footprint) {
  console.log(
    `  ${f.node.padEnd(5)}  ${String(f.rssMb).padStart(8)}   ${String(f.pssMb).padStart(8)}   ${String(f.privateMb).padStart(12)}   ${String(f.cpuPercent).padStart(7)}   ${String(f.yggdrasil?.rssMb ?? "-").padStart(18)}   ${String(f.yggdrasil?.cpuPercent ?? "-").padStart(17)}`,
  );
}
console.log(JSON.stringify(result));
