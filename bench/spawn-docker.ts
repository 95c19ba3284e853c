/**
 * Benchmark: `raptiformica spawn --compute-type docker` with the packaged image, from an
 * operator sandbox: seconds from the spawn command to the new node alive in `members` (asked
 * from the operator, answered by a member over SSH), with where the time goes (each progress
 * step of spawn, timestamped as it is printed). Also the time of `package` (the image build).
 * Goal: spawn → alive < 15 s.
 *
 *   node --import tsx bench/spawn-docker.ts [--runs N] [--fresh-image]
 *
 * --runs N        spawns in one cluster (default 3; the first bootstraps the cluster)
 * --fresh-image   remove the docker compute type's images first (and the base, when
 *                 raptiformica made it with debootstrap), so `package` builds from nothing
 *
 * Needs a working docker (bash scripts/setup-docker.sh). Removes every container it made.
 * Prints a table and one JSON line.
 */
import { execa } from "execa";
import { BIN } from "../test/helpers/cli.ts";
import { DockerOperator, PACKAGED_IMAGE, docker, dockerSkipReason } from "../test/helpers/docker.ts";

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const runs = opt("--runs", 3);
const fresh = args.includes("--fresh-image");

const why = dockerSkipReason();
if (why) {
  console.error(`bench/spawn-docker: ${why}`);
  process.exit(2);
}

const secs = (ms: number) => Math.round(ms) / 1000;
const op = new DockerOperator();

interface SpawnFigures {
  spawnSeconds: number;
  aliveSeconds: number;
  role: string;
  steps: { step: string; at: number }[];
}

async function removeImages(): Promise<string[]> {
  const removed: string[] = [];
  for (const image of [PACKAGED_IMAGE, "raptiformica-docker:sshd-bookworm"]) {
    if ((await docker(["image", "rm", "-f", image])).code === 0) removed.push(image);
  }
  const base = "debian:bookworm-slim";
  const comment = (await docker(["image", "inspect", "-f", "{{.Comment}}", base])).stdout;
  if (comment.includes("raptiformica") && (await docker(["image", "rm", "-f", base])).code === 0) removed.push(`${base} (debootstrapped)`);
  return removed;
}

async function spawnOnce(): Promise<SpawnFigures> {
  const t0 = performance.now();
  const steps: { step: string; at: number }[] = [];
  const child = execa(BIN, ["spawn", "--compute-type", "docker"], { env: op.env, extendEnv: false, cwd: op.home, reject: false, timeout: 300_000 });
  let buf = "";
  child.stderr?.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      const m = /^› ([^:]+)/.exec(line);
      if (m) steps.push({ step: m[1]!.trim(), at: secs(performance.now() - t0) });
    }
  });
  const r = await child;
  const spawnMs = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`spawn failed (exit ${r.exitCode}):\n${r.stderr}`);
  const meshAddress = r.stdout.trim().split(" ")[3];
  let role = "?";
  for (;;) {
    const m = await op.members().catch(() => []);
    const me = m.find((x) => x.meshAddress === meshAddress);
    if (me?.status === "alive") {
      role = me.role ?? "-";
      break;
    }
    if (performance.now() - t0 > 120_000) throw new Error(`${meshAddress} not alive in members after 120 s`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { spawnSeconds: secs(spawnMs), aliveSeconds: secs(performance.now() - t0), role, steps };
}

let exit = 0;
try {
  const removed = fresh ? await removeImages() : [];
  const t0 = performance.now();
  const pkg = await op.rf(["package", "--compute-type", "docker"], 1_800_000);
  if (pkg.code !== 0) throw new Error(`package failed:\n${pkg.stderr}`);
  const packageSeconds = secs(performance.now() - t0);

  const spawns: SpawnFigures[] = [];
  for (let i = 0; i < runs; i++) spawns.push(await spawnOnce());

  const alive = spawns.map((s) => s.aliveSeconds);
  const sorted = [...alive].sort((a, b) => a - b);
  const result = {
    packageSeconds,
    packageFromScratch: fresh,
    removedFirst: removed,
    spawnToAliveSeconds: { runs: alive, median: sorted[Math.floor(sorted.length / 2)]!, max: sorted[sorted.length - 1]!, goal: 15 },
    spawns,
  };
  console.log(`package --compute-type docker (${fresh ? "from scratch" : "images cached"}): ${packageSeconds.toFixed(1)} s`);
  console.log("spawn --compute-type docker → alive in members (packaged image)");
  console.log("  #   spawn (s)   alive (s)   role      steps (s from start)");
  spawns.forEach((s, i) => {
    const steps = s.steps.map((x) => `${x.step.replace(/^(starting the instance|instance started|copying raptiformica|joining the mesh).*$/, "$1")} ${x.at.toFixed(1)}`).join(", ");
    console.log(`  ${String(i + 1).padEnd(3)} ${s.spawnSeconds.toFixed(2).padStart(9)}   ${s.aliveSeconds.toFixed(2).padStart(9)}   ${s.role.padEnd(8)}  ${steps}`);
  });
  console.log(`  median ${result.spawnToAliveSeconds.median.toFixed(2)} s, max ${result.spawnToAliveSeconds.max.toFixed(2)} s; goal < 15 s`);
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(`bench/spawn-docker: ${(e as Error).message}`);
  exit = 1;
} finally {
  await op.rf(["destroy"], 300_000);
  await op.cleanup();
}
process.exit(exit);
