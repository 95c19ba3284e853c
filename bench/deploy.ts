/**
 * Benchmark: `deploy` of N fresh bare hosts (the netns compute type's instances, started
 * directly: own namespaces and sshd, nothing installed in them) with `--concurrent C`, from an
 * operator sandbox. Measures the deploy command's wall time, each host's slave time (and how
 * long it waited for the first member), and the time until `members` shows all N alive.
 * Goal (2-core machine): 10 hosts, --concurrent 10, < 60 s.
 *
 *   node --import tsx bench/deploy.ts [--hosts N] [--concurrent C] [--runs R]
 *
 * Needs root, openssh-server, yggdrasil and etcd; `npm run build` first (the built CLI runs).
 * Prints a table and one JSON line per run; every machine is removed at the end.
 */
import Table from "cli-table3";
import { sandbox } from "../test/helpers/cli.ts";
import { Machines, writeInventory } from "../test/helpers/machines.ts";
import { waitFor } from "../test/lab/index.ts";
import type { DeployReport } from "../src/ops/deploy.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const hosts = opt("--hosts", 10);
const concurrent = opt("--concurrent", 10);
const runs = opt("--runs", 1);
const GOAL_SECONDS = 60;

interface RunResult {
  run: number;
  hosts: number;
  concurrent: number;
  ok: number;
  totalSeconds: number;
  allAliveSeconds: number;
  perHost: { host: string; ok: boolean; seconds: number; waitedSeconds: number; role?: string; error?: string }[];
}

async function once(run: number): Promise<RunResult> {
  const op = sandbox();
  const machines = new Machines(op.cache);
  try {
    const list = await machines.startMany(hosts, 4);
    const inventory = writeInventory(op.home, "inventory.json", list.map((m) => ({ dst: m.address })));
    const t0 = performance.now();
    const r = await op.run(["deploy", inventory, "--concurrent", String(concurrent), "--json"], { env: {}, timeout: 600_000 });
    const totalSeconds = (performance.now() - t0) / 1000;
    let report: DeployReport;
    try {
      report = JSON.parse(r.stdout) as DeployReport;
    } catch {
      throw new Error(`deploy printed no JSON (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
    }
    await waitFor(
      `${hosts} alive`,
      async () => {
        const m = await op.run(["members", "--json"], { env: {} });
        return (JSON.parse(m.stdout) as { members: { status: string }[] }).members.filter((x) => x.status === "alive").length >= hosts;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    ).catch((e: Error) => process.stderr.write(`${e.message}\n`));
    const allAliveSeconds = (performance.now() - t0) / 1000;
    return {
      run,
      hosts,
      concurrent,
      ok: report.hosts.filter((h) => h.ok).length,
      totalSeconds: Math.round(totalSeconds * 10) / 10,
      allAliveSeconds: Math.round(allAliveSeconds * 10) / 10,
      perHost: report.hosts.map((h) => ({
        host: h.dst,
        ok: h.ok,
        seconds: h.seconds,
        waitedSeconds: h.waitedSeconds,
        ...(h.role ? { role: h.role } : {}),
        ...(h.error ? { error: h.error } : {}),
      })),
    };
  } finally {
    await machines.cleanup();
    op.cleanup();
  }
}

const results: RunResult[] = [];
for (let i = 1; i <= runs; i++) {
  const r = await once(i);
  results.push(r);
  const table = new Table({ head: ["Host", "Result", "Role", "Waited s", "Slave s"], style: { head: [], border: [] } });
  for (const h of r.perHost) table.push([h.host, h.ok ? "ok" : `failed: ${(h.error ?? "").slice(0, 60)}`, h.role ?? "-", h.waitedSeconds.toFixed(1), h.seconds.toFixed(1)]);
  process.stdout.write(`${table.toString()}\n`);
  process.stdout.write(
    `run ${i}: deploy of ${r.hosts} hosts (--concurrent ${r.concurrent}): ${r.ok}/${r.hosts} ok in ${r.totalSeconds} s (goal < ${GOAL_SECONDS} s: ${r.totalSeconds < GOAL_SECONDS ? "met" : "MISSED"}); all alive after ${r.allAliveSeconds} s\n`,
  );
  process.stdout.write(`${JSON.stringify({ bench: "deploy", ...r })}\n`);
}
if (results.some((r) => r.ok < r.hosts)) process.exitCode = 1;
