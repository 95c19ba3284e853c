/**
 * Helpers shared by the lab benchmarks (bench/healing.ts, bench/scale.ts): option parsing,
 * statistics, per-process memory/CPU from /proc, and the role view of `members`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "../../test/lab/index.ts";
import { pidsInNamespaces } from "../../test/lab/netns.ts";
import { labMemberPath, type LabCluster } from "../../test/helpers/cluster.ts";
import { ROOT } from "../../test/helpers/cli.ts";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * What every lab benchmark needs before it starts: each of `tools` on the PATH, and the built
 * CLI (the lab runs bin/raptiformica → dist/). Says what is missing and exits 2 otherwise.
 */
export function requireLabBench(tools: readonly string[]): void {
  for (const tool of tools) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) {
      console.error(`needs ${tool}`);
      process.exit(2);
    }
  }
  if (!existsSync(join(ROOT, "dist", "raptiformica.mjs"))) {
    console.error("run `npm run build` first: the lab runs bin/raptiformica → dist/");
    process.exit(2);
  }
}

const argv = process.argv.slice(2);

export function numOpt(name: string, def: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return def;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`${name} needs a number, got ${argv[i + 1]}`);
  return v;
}

export function strOpt(name: string, def: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
}

export function flag(name: string): boolean {
  return argv.includes(name);
}

export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function max(xs: readonly number[]): number | undefined {
  return xs.length === 0 ? undefined : Math.max(...xs);
}

/** Seconds with 2 decimals (for JSON). */
export const sec = (ms: number) => Math.round(ms / 10) / 100;

export function fmtS(s: number | undefined | null, digits = 2): string {
  return s === undefined || s === null ? "-" : `${s.toFixed(digits)} s`;
}

/** The first line of an error, for tables and JSON. */
export function brief(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 300);
}

export const TICK = 100; // clock ticks per second on Linux

/**
 * RSS counts shared code pages (the node binary, ~35 MB, shared by every node process); PSS
 * splits shared pages among their users.
 */
export function procStat(pid: number): { rssKb: number; pssKb: number; privateKb: number; cpuTicks: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    rssKb: field("Rss"),
    pssKb: field("Pss"),
    privateKb: field("Private_Clean") + field("Private_Dirty"),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
  };
}

export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** Processes on the machine that belong to labs of other runs (a rough "how busy is the box"). */
export function foreignLabProcesses(ownLabIds: readonly string[]): number {
  let n = 0;
  for (const pid of readdirPids()) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!/raptiformica-lab\/rfl-/.test(cmd)) continue;
      if (ownLabIds.some((id) => cmd.includes(`rfl-${id}`))) continue;
      n++;
    } catch {
      // gone
    }
  }
  return n;
}

function readdirPids(): number[] {
  try {
    return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return [];
  }
}

export type Roles = Record<string, { role?: string; status: string }>;

export async function roles(c: LabCluster, from: number): Promise<Roles> {
  const m = await c.members(from);
  return Object.fromEntries(m.members.map((x) => [x.name, { ...(x.role ? { role: x.role } : {}), status: x.status }]));
}

export function healthyVoters(r: Roles): string[] {
  return Object.entries(r)
    .filter(([, v]) => v.status === "alive" && (v.role === "voter" || v.role === "leader"))
    .map(([k]) => k);
}

export function leaderOf(r: Roles): number | undefined {
  const e = Object.entries(r).find(([, v]) => v.role === "leader");
  return e ? Number(e[0].slice(1)) : undefined;
}

/**
 * Polls `probe` back to back (with `gapMs` between attempts) until it returns true or `timeoutMs`
 * passes. Returns when the successful attempt started and ended, relative to `t0`
 * (performance.now() time base), and how long attempts took: the figure is bounded by
 * [start, end] of the successful attempt. Attempt durations are pushed to `opts.attemptMs` if
 * given (also when it times out).
 */
export async function pollUntil(
  t0: number,
  probe: () => Promise<boolean>,
  opts: { gapMs: number; timeoutMs: number; attemptMs?: number[] },
): Promise<{ startMs: number; endMs: number; attempts: number; attemptMs: number[] } | undefined> {
  const attemptMs: number[] = opts.attemptMs ?? [];
  while (performance.now() - t0 < opts.timeoutMs) {
    const s = performance.now();
    let ok = false;
    try {
      ok = await probe();
    } catch {
      ok = false;
    }
    const e = performance.now();
    attemptMs.push(e - s);
    if (ok) return { startMs: s - t0, endMs: e - t0, attempts: attemptMs.length, attemptMs };
    await sleep(opts.gapMs);
  }
  return undefined;
}

// SIGINT/SIGTERM (e.g. from `timeout`): exit normally, so the lab's exit hook tears the labs down.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.error(`${sig}: tearing the labs down`);
    process.exit(130);
  });
}

/** The pid of node i's agent, if it runs. */
export function agentPid(lab: Lab, i: number): number | undefined {
  try {
    const pid = Number(readFileSync(join(lab.nodes[i]!.cacheDir, "node", "run", "agent.pid"), "utf8").trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** The pid of the yggdrasil process in node i's namespace (argv[0] named yggdrasil), if one runs. */
export function yggdrasilPid(lab: Lab, i: number): number | undefined {
  const ns = lab.nodes[i]!.ns;
  for (const pid of pidsInNamespaces([ns]).get(ns) ?? []) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (/(^|\/)yggdrasil$/.test(argv0)) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

/** The last n non-empty lines of a file ([] if it cannot be read). */
export function tailLines(path: string, n: number): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter(Boolean).slice(-n);
  } catch {
    return [];
  }
}

/**
 * The yggdrasil and etcd a lab member runs, found on its PATH (`labMemberPath`, so
 * RAPTIFORMICA_LAB_PATH counts): e.g. { yggdrasil: "0.5.12", etcd: "3.5.16" }. Debian's 0.4
 * build does not know its version: it is "0.4.x" then (the flags tell the major, as in
 * src/mesh/yggdrasil/version.ts). "?" when a program does not answer.
 */
export function labStack(path = labMemberPath()): { yggdrasil: string; etcd: string } {
  const out = (file: string, args: string[]) => {
    const r = spawnSync(file, args, { encoding: "utf8", env: { PATH: path }, timeout: 10_000 });
    return `${r.stdout ?? ""}\n${r.stderr ?? ""}`;
  };
  let yggdrasil = /Build version:\s*v?(\d+\.\d+\.\d+)/.exec(out("yggdrasil", ["-version"]))?.[1];
  if (!yggdrasil) {
    const help = out("yggdrasil", ["-h"]);
    yggdrasil = /-useconffile/.test(help) ? (/-publickey/.test(help) ? "0.5.x" : "0.4.x") : "?";
  }
  const etcd = /etcd Version:\s*(\S+)/.exec(out("etcd", ["--version"]))?.[1] ?? "?";
  return { yggdrasil, etcd };
}
