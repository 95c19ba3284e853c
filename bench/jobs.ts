/**
 * Jobs benchmark on a real lab cluster (yggdrasil, etcd, agents with their job runners, in
 * network namespaces):
 *   (a) service takeover: the member running a `--restart always` service is killed; seconds
 *       until the service runs on another member (as `job show` there says). Goal ≤ 10 s; the
 *       reference beside it is Nomad's default, heartbeat_grace 10 s + the ~10 s heartbeat TTL
 *       (≈ 20 s) before a lost node's allocations are rescheduled.
 *   (b) dispatch: N `--on one` jobs stored at once (one etcd transaction); jobs finished per
 *       second, from the write until every one has its end recorded.
 * Prints a table and one JSON line. Run serialized with the other lab users:
 *   flock /tmp/raptiformica-e2e.lock node --import tsx bench/jobs.ts [--nodes 5] [--jobs 100] [--runs 1]
 */
import { join } from "node:path";
import { jobAnswer } from "../src/ops/cluster/job-wire.ts";
import { JOBS_PREFIX } from "../src/consensus/jobs.ts";
import { LabCluster } from "../test/helpers/cluster.ts";
import { Lab, waitFor } from "../test/lab/index.ts";
import { brief, fmtS, loadAverage, median, numOpt, sec } from "./lib/common.ts";

const nodes = numOpt("--nodes", 5);
const jobCount = numOpt("--jobs", 100);
const runs = numOpt("--runs", 1);
const NOMAD_REFERENCE_S = 20;

async function formCluster(lab: Lab): Promise<LabCluster> {
  const n = lab.nodes.length;
  return new LabCluster(lab).form(n, { joins: "together", aliveTimeoutMs: 120_000, voters: Math.min(5, n % 2 === 1 ? n : n - 1) });
}

function etcdctl(lab: Lab, i: number, args: string[], input?: string) {
  const tls = join(lab.nodes[i]!.cacheDir, "node", "etcd", "tls");
  return lab.exec(i, ["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "--command-timeout", "20s", ...args], {
    env: { ETCDCTL_API: "3" },
    ...(input !== undefined ? { input } : {}),
  });
}

const takeovers: number[] = [];
const rates: number[] = [];
const errors: string[] = [];

for (let k = 0; k < runs; k++) {
  const lab = await Lab.create({ nodes, topology: "full" });
  try {
    const c = await formCluster(lab);
    // (b) dispatch first, on the whole cluster.
    const tag = `b${k}`;
    const puts = Array.from({ length: jobCount }, (_, j) => {
      const spec = { v: 1, name: `${tag}-${j}`, argv: ["true"], on: "one", retries: 0, createdAt: Date.now() };
      return `put ${JOBS_PREFIX}${spec.name}/spec ${JSON.stringify(JSON.stringify(spec))}`;
    });
    // etcd's default limit is 128 operations per transaction: store them in chunks of 100.
    const t0 = performance.now();
    for (let s = 0; s < puts.length; s += 100) {
      // No compares (a blank line), the puts and a blank line, no failure ops (a blank line).
      const r = await etcdctl(lab, 0, ["txn"], `\n${puts.slice(s, s + 100).join("\n")}\n\n\n`);
      if (r.exitCode !== 0) throw new Error(`storing the jobs: ${r.stderr}`);
    }
    await waitFor(
      `${jobCount} jobs ended`,
      async () => {
        const r = await etcdctl(lab, 0, ["get", "--prefix", `${JOBS_PREFIX}${tag}-`, "--print-value-only"]);
        const ended = r.stdout.split("\n").filter((l) => l.includes('"endedAt"')).length;
        if (ended < jobCount) throw new Error(`${ended} ended`);
        return true;
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    );
    rates.push(jobCount / ((performance.now() - t0) / 1000));

    // (a) service takeover.
    await c.rfOk(0, ["job", "run", "--name", `svc${k}`, "--restart", "always", "--", "sleep", "600"]);
    const show = async (i: number) => jobAnswer.parse(JSON.parse(await c.rfOk(i, ["job", "show", "--json", `svc${k}`], 30_000)));
    const first = await waitFor("the service running", async () => {
      const r = (await show(0)).runs.find((x) => x.outcome === "running");
      if (!r) throw new Error("not yet");
      return r;
    }, { timeoutMs: 30_000, intervalMs: 300 });
    const victim = lab.nodes.findIndex((n) => n.name === first.member);
    const observer = victim === 0 ? 1 : 0;
    const t1 = performance.now();
    await lab.killNode(victim);
    await waitFor("the service running elsewhere", async () => {
      const r = (await show(observer)).runs.find((x) => x.outcome === "running");
      if (!r || r.member === first.member) throw new Error("not yet");
      return r;
    }, { timeoutMs: 120_000, intervalMs: 200 });
    takeovers.push((performance.now() - t1) / 1000);
  } catch (e) {
    errors.push(brief(e));
  } finally {
    await lab.destroy();
  }
}

const m = median(takeovers);
const r = median(rates);
console.log(`Jobs on a ${nodes}-node lab, ${runs} run(s); load average at start ${loadAverage()}`);
console.log(["figure".padEnd(52), "runs".padStart(18), "median".padStart(10), "goal / reference".padStart(24)].join(" "));
console.log(["(a) killed member's service running elsewhere".padEnd(52), takeovers.map((x) => x.toFixed(1)).join(", ").padStart(18), fmtS(m, 1).padStart(10), `≤ 10 s / Nomad ≈ ${NOMAD_REFERENCE_S} s`.padStart(24)].join(" "));
console.log([`(b) jobs dispatched and ended per second (${jobCount})`.padEnd(52), rates.map((x) => x.toFixed(1)).join(", ").padStart(18), (r === undefined ? "-" : `${r.toFixed(1)}/s`).padStart(10), "".padStart(24)].join(" "));
for (const e of errors) console.log(`error: ${e}`);
console.log(JSON.stringify({ bench: "jobs", nodes, jobs: jobCount, runs, takeoverS: takeovers.map((x) => sec(x * 1000)), takeoverMedianS: m === undefined ? null : sec(m * 1000), nomadReferenceS: NOMAD_REFERENCE_S, dispatchPerS: rates.map((x) => Math.round(x * 10) / 10), errors }));
process.exit(errors.length > 0 ? 1 : 0);
