/**
 * Benchmark: what the link report (src/node/step-links.ts) costs a member at rest. Two lab
 * clusters of `--nodes` members (default 3) on one segment form side by side, one with
 * RAPTIFORMICA_LINK_REPORTS=0 in its agents' environment (no report), one without (reports on);
 * after both are ready and `--settle` seconds (default 20) have passed, the CPU time of every
 * member's agent, yggdrasil and etcd is read from /proc/<pid>/stat over the same `--seconds`
 * window (default 60), so both see the same load on the machine. CPU % is of one core. Also
 * how often each report was written in that window (its etcd key's version).
 *
 *   node --import tsx bench/link-report-cpu.ts [--nodes 3] [--seconds 60] [--settle 20] [--ygg 0.5|0.4]
 *
 * Needs root, etcd, yggdrasil (0.5: scripts/fetch-yggdrasil-0.5.sh); `npm run build` first.
 * Prints a table and a JSON line.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LabCluster } from "../test/helpers/cluster.ts";
import { ROOT } from "../test/helpers/cli.ts";
import { yggdrasil05 } from "../test/helpers/netns-pair.ts";
import { Lab } from "../test/lab/index.ts";
import { pidsInNamespaces } from "../test/lab/netns.ts";
import { agentPid, loadAverage, numOpt, procStat, sleep, strOpt, TICK, yggdrasilPid } from "./lib/common.ts";

const nodes = numOpt("--nodes", 3);
const seconds = numOpt("--seconds", 60);
const settle = numOpt("--settle", 20);
const ygg = strOpt("--ygg", "0.5");

if (!existsSync(join(ROOT, "dist", "raptiformica.mjs"))) {
  console.error("run `npm run build` first: the lab runs bin/raptiformica → dist/");
  process.exit(2);
}
if (ygg !== "0.4" && ygg !== "0.5") throw new Error(`--ygg takes 0.4 or 0.5, not ${ygg}`);
const y05 = ygg === "0.5" ? yggdrasil05() : undefined;
if (y05 && "skip" in y05) throw new Error(y05.skip);
const ygg05Bin = y05 && "bin" in y05 ? y05.bin : undefined;

/** The pid of the etcd (server or grpc-proxy) in node i's namespace, if one runs. */
function etcdPid(lab: Lab, i: number): number | undefined {
  const ns = lab.nodes[i]!.ns;
  for (const pid of pidsInNamespaces([ns]).get(ns) ?? []) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (/(^|\/)etcd$/.test(argv0)) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

/** The version (writes since it was made) of every link report, keyed by member name, as node 0's etcd has them. */
async function reportVersions(lab: Lab): Promise<Map<string, number>> {
  const tls = join(lab.nodes[0]!.cacheDir, "node", "etcd", "tls");
  const r = await lab.exec(0, ["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "get", "--prefix", "raptiformica/links/", "-w", "json"], {
    env: { ETCDCTL_API: "3" },
    timeoutMs: 15_000,
  });
  const out = new Map<string, number>();
  if (r.exitCode !== 0) return out;
  const kvs = (JSON.parse(r.stdout) as { kvs?: { value: string; version: number }[] }).kvs ?? [];
  for (const kv of kvs) {
    const report = JSON.parse(Buffer.from(kv.value, "base64").toString("utf8")) as { publicKey: string };
    const key = report.publicKey;
    const name = lab.nodes.find((n) => readFileSync(join(n.cacheDir, "node", "run", "status.json"), "utf8").includes(key))?.name ?? key.slice(0, 8);
    out.set(name, kv.version);
  }
  return out;
}

const ticksOf = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined;
  try {
    return procStat(pid).cpuTicks;
  } catch {
    return undefined;
  }
};

async function form(reports: boolean): Promise<{ lab: Lab; c: LabCluster }> {
  const lab = await Lab.create({ nodes, topology: "full" });
  const env: NodeJS.ProcessEnv = { ...(ygg05Bin !== undefined ? { RAPTIFORMICA_YGGDRASIL: ygg05Bin } : {}), ...(reports ? {} : { RAPTIFORMICA_LINK_REPORTS: "0" }) };
  const c = await new LabCluster(lab, env).form(nodes, { aliveTimeoutMs: 120_000 });
  return { lab, c };
}

const labs: Lab[] = [];
try {
  const t0 = performance.now();
  const [off, on] = await Promise.all([form(false), form(true)]);
  labs.push(off.lab, on.lab);
  console.error(`# both clusters ready after ${((performance.now() - t0) / 1000).toFixed(0)} s; settling ${settle} s`);
  await sleep(settle * 1000);
  const variants = [
    { name: "off", lab: off.lab },
    { name: "on", lab: on.lab },
  ];
  const procs = variants.flatMap((v) =>
    v.lab.nodes.map((n, i) => ({ variant: v.name, node: n.name, pids: { agent: agentPid(v.lab, i), yggdrasil: yggdrasilPid(v.lab, i), etcd: etcdPid(v.lab, i) } })),
  );
  const before = procs.map((p) => Object.fromEntries(Object.entries(p.pids).map(([k, pid]) => [k, ticksOf(pid)])));
  const load0 = loadAverage();
  const versions0 = await reportVersions(on.lab);
  const w0 = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - w0) / 1000;
  const versions1 = await reportVersions(on.lab);
  const writes = Object.fromEntries([...versions1].map(([name, v]) => [name, v - (versions0.get(name) ?? v)]));
  // What the reports say, for a look (stderr: the figures stay the table and the JSON line).
  console.error((await on.c.rf(0, ["links"], 30_000)).stdout.replace(/^/gm, "# "));
  const pct = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? null : Math.round(((b - a) / TICK / elapsed) * 100 * 1000) / 1000);
  const rows = procs.map((p, i) => {
    const after = Object.fromEntries(Object.entries(p.pids).map(([k, pid]) => [k, ticksOf(pid)]));
    const b = before[i]!;
    return { variant: p.variant, node: p.node, agentPct: pct(b["agent"], after["agent"]), yggdrasilPct: pct(b["yggdrasil"], after["yggdrasil"]), etcdPct: pct(b["etcd"], after["etcd"]) };
  });
  const mean = (variant: string, k: "agentPct" | "yggdrasilPct" | "etcdPct") => {
    const xs = rows.filter((r) => r.variant === variant).map((r) => r[k]).filter((x): x is number => x !== null);
    return xs.length === 0 ? null : Math.round((xs.reduce((a, x) => a + x, 0) / xs.length) * 1000) / 1000;
  };
  const pad = (s: string, n: number) => s.padEnd(n);
  const f = (x: number | null) => (x === null ? "-" : `${x.toFixed(3)} %`);
  console.log(`Yggdrasil ${ygg}, ${nodes} members per cluster, ${elapsed.toFixed(0)} s at rest (CPU % of one core; load average ${load0} → ${loadAverage()})`);
  console.log(`${pad("reports", 9)}${pad("member", 8)}${pad("agent", 11)}${pad("yggdrasil", 11)}etcd`);
  for (const r of rows) console.log(`${pad(r.variant, 9)}${pad(r.node, 8)}${pad(f(r.agentPct), 11)}${pad(f(r.yggdrasilPct), 11)}${f(r.etcdPct)}`);
  for (const v of ["off", "on"]) console.log(`${pad(v, 9)}${pad("mean", 8)}${pad(f(mean(v, "agentPct")), 11)}${pad(f(mean(v, "yggdrasilPct")), 11)}${f(mean(v, "etcdPct"))}`);
  console.log(`link report writes in the window (reports on): ${Object.entries(writes).map(([n, w]) => `${n} ${w}`).join(", ") || "could not be read"}`);
  const summary = Object.fromEntries(["off", "on"].map((v) => [v, { agentPct: mean(v, "agentPct"), yggdrasilPct: mean(v, "yggdrasilPct"), etcdPct: mean(v, "etcdPct") }]));
  console.log(JSON.stringify({ yggdrasil: ygg, nodes, seconds: Math.round(elapsed), mean: summary, reportWrites: writes, members: rows }));
} finally {
  await Promise.allSettled(labs.map((l) => l.destroy()));
}
