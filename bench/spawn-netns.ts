/**
 * Benchmark: seconds from `raptiformica spawn --compute-type netns` to the new node alive in
 * `members` (asked from the operator), for N spawns in a row into one cluster. The netns
 * instances share this host's installed packages, so this is the "packaged image" case.
 * Goal (issue 4): under 15 s per node.
 *
 *   node --import tsx bench/spawn-netns.ts [--nodes N]
 *
 * Needs root, sshd, yggdrasil and etcd. Works in a throwaway cache dir and destroys what it made.
 */
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN } from "../test/helpers/cli.ts";

const args = process.argv.slice(2);
const nodes = Number(args[args.indexOf("--nodes") + 1] ?? 3) || 3;
const home = mkdtempSync(join(tmpdir(), "rf-bench-spawn-"));
const env = { PATH: process.env["PATH"], HOME: home, LANG: "C.UTF-8" };
const rf = (argv: string[]) => execa(BIN, argv, { env, extendEnv: false, reject: false, timeout: 300_000 });

const rows: { node: number; spawnSeconds: number; aliveSeconds: number }[] = [];
try {
  for (let i = 1; i <= nodes; i++) {
    const t0 = performance.now();
    const r = await rf(["spawn", "--compute-type", "netns"]);
    if (r.exitCode !== 0) throw new Error(`spawn ${i} failed: ${r.stderr}`);
    const spawnSeconds = (performance.now() - t0) / 1000;
    const meshAddress = r.stdout.trim().split(" ")[3];
    for (let k = 0; k < 600; k++) {
      const m = await rf(["members", "--json"]);
      const parsed = JSON.parse(m.stdout || "{}") as { members?: { meshAddress: string; status: string }[] };
      if (parsed.members?.some((x) => x.meshAddress === meshAddress && x.status === "alive")) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    rows.push({ node: i, spawnSeconds: Math.round(spawnSeconds * 100) / 100, aliveSeconds: Math.round(((performance.now() - t0) / 1000) * 100) / 100 });
  }
} finally {
  await rf(["destroy"]);
  rmSync(home, { recursive: true, force: true });
}

console.log("spawn --compute-type netns → alive in members (goal < 15 s)");
console.log("  node   spawn exits (s)   alive in members (s)");
for (const r of rows) console.log(`  ${String(r.node).padEnd(6)} ${String(r.spawnSeconds).padStart(15)}   ${String(r.aliveSeconds).padStart(20)}`);
console.log(JSON.stringify({ spawnToAlive: { computeType: "netns", runs: rows, goalSeconds: 15 } }));
