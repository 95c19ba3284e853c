/**
 * Jobs on a real 3-member lab cluster (yggdrasil, etcd and the agents, each running its job
 * runner, in network namespaces), driven through the built CLI: `--on all` runs once on every
 * alive member, each run with its exit code, its fence in its environment, its whole log on its
 * member; the same answer decodes through a member as an operator machine gets it; `--on one`
 * runs exactly once while three runners race for it, and `--retries` runs a failed one again;
 * `--timeout` kills the process group; a job whose spec in the KV is bad is listed as a problem
 * and never runs while a good one still does; `job cancel` ends running processes; a service
 * (`--restart always`) whose member is killed runs again on another member, and one whose
 * agent is SIGKILLed is never left running twice; `job rm` removes a finished job with its run
 * records and refuses a running one until it is cancelled.
 *
 * The lab nodes share this machine's file system: a command that writes into a temp dir is
 * seen by the test whichever member ran it. Cost (2 cores): about 60 s: a third forming the
 * cluster, a third waiting out the killed member's lease.
 */
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jobAnswer, type JobAnswer } from "../../src/ops/cluster/job-wire.ts";
import { checkJobRequest } from "../../src/ops/job/jobs.ts";
import { ViaMember } from "../../src/ops/cluster/via-member.ts";
import { createLogger } from "../../src/util/log.ts";
import type { LabCluster } from "../helpers/cluster.ts";
import { closeJobsLab, etcdctlOn, jobsLab, jobsLabMissing, type JobsLab } from "../helpers/jobs-lab.ts";
import { Lab, waitFor } from "../lab/index.ts";

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

describe("jobs on a lab cluster", { skip: jobsLabMissing(), timeout: 150_000 }, () => {
  let j: JobsLab | undefined;
  let lab: Lab;
  let c: LabCluster;
  let dir: string;
  let names: string[] = [];

  const show = async (name: string, i = 0): Promise<JobAnswer> => jobAnswer.parse(JSON.parse(await c.rfOk(i, ["job", "show", "--json", name], 30_000)));
  /** Until job `name` is in one of `states` (bounded), as member 0 shows it. */
  const until = async (name: string, states: readonly string[], timeoutMs = 20_000): Promise<JobAnswer> =>
    waitFor(
      `job ${name} to be ${states.join(" or ")}`,
      async () => {
        const j = await show(name);
        if (!states.includes(j.state)) throw new Error(`${j.state}: ${JSON.stringify(j.runs.map((r) => [r.id, r.outcome, r.exitCode]))}`);
        return j;
      },
      { timeoutMs, intervalMs: 300 },
    );
  const etcdctl = (...args: string[]) => etcdctlOn(lab, 0, args);

  before(async () => {
    const t0 = performance.now();
    j = await jobsLab({ tmpPrefix: "rf-jobs-" });
    ({ lab, c, dir } = j);
    names = lab.nodes.map((n) => n.name);
    log(`3-member lab cluster: ${secs(t0)}`);
  });

  after(() => closeJobsLab(j));

  it("--on all: one run on every alive member, each with its exit code, its fence in its environment and its whole log on its member; the same through a member", async () => {
    const t0 = performance.now();
    const stored = JSON.parse(await c.rfOk(1, ["job", "run", "--json", "--name", "hello", "--on", "all", "--", "sh", "-c", 'echo "run=$RAPTIFORMICA_JOB_RUN fence=$RAPTIFORMICA_JOB_FENCE"; seq 1 3000'])) as { members: { name: string }[] };
    assert.deepEqual(stored.members.map((m) => m.name).sort(), [...names].sort());
    const j = await until("hello", ["succeeded", "failed"]);
    log(`--on all done on 3 members: ${secs(t0)}`);
    assert.equal(j.state, "succeeded");
    assert.deepEqual(j.runs.map((r) => r.member).sort(), [...names].sort(), "one run per member");
    for (const r of j.runs) {
      assert.equal(r.exitCode, 0);
      assert.equal(r.outcome, "succeeded");
      assert.ok(r.endedAt !== undefined && r.endedAt >= r.startedAt);
      // The tail only (the whole output is ~14 kB), ending with the last line; the first line is in the log.
      assert.ok(Buffer.byteLength(r.outputTail ?? "") <= 4096, `tail of ${r.id}: ${r.outputTail?.length}`);
      assert.match(r.outputTail ?? "", /\n3000\n$/);
      const node = lab.nodes.find((n) => n.name === r.member)!;
      const whole = readFileSync(join(node.cacheDir, "node", "log", "jobs", "hello", `${r.id}.log`), "utf8");
      assert.match(whole, new RegExp(`^run=${r.id} fence=${r.fence}\\n1\\n`), "the command got its run and fence");
    }
    assert.equal(new Set(j.runs.map((r) => r.fence)).size, 3, "each claim its own fence");
    // What an operator machine gets through a member decodes to the same runs.
    const via = await new ViaMember({ members: async () => [c.channel(2)], mine: () => undefined, log: createLogger(false) }).jobShow("hello");
    assert.deepEqual(via.runs.map((r) => [r.id, r.exitCode]), j.runs.map((r) => [r.id, r.exitCode]));
    const table = await c.rfOk(0, ["job", "show", "hello"]);
    log(`job show hello:\n${table.split("\n").slice(0, 12).join("\n")}`);
    for (const n of names) assert.match(table, new RegExp(`\\s${n}\\s+succeeded\\s.*\\s0\\s+\\d+$`, "m"));
  });

  it("--on one: exactly one run while three runners race for it; --retries runs a failed one again; --timeout kills the process group", async () => {
    const t0 = performance.now();
    const count = join(dir, "count");
    await c.rfOk(0, ["job", "run", "--name", "once", "--", "sh", "-c", `echo "$RAPTIFORMICA_JOB_FENCE" >> ${count}`]);
    // Fails the first time (exit 7), succeeds the second: two runs, then nothing more.
    const flag = join(dir, "flag");
    await c.rfOk(2, ["job", "run", "--name", "retry", "--on", "one", "--retries", "3", "--", "sh", "-c", `if [ -e ${flag} ]; then exit 0; fi; touch ${flag}; exit 7`]);
    const left = join(dir, "left");
    await c.rfOk(1, ["job", "run", "--name", "slow", "--timeout", "1s", "--", "sh", "-c", `sleep 60 & echo $! > ${left}; wait`]);
    const once = await until("once", ["succeeded", "failed"]);
    assert.equal(once.runs.length, 1, JSON.stringify(once.runs));
    assert.deepEqual(readFileSync(count, "utf8").trim().split("\n"), [once.runs[0]!.fence], "the command ran once, with its run's fence");
    const retry = await until("retry", ["succeeded", "failed"]);
    assert.equal(retry.state, "succeeded");
    assert.deepEqual(retry.runs.map((r) => [r.attempt, r.exitCode, r.outcome]), [[1, 7, "failed"], [2, 0, "succeeded"]]);
    const slow = await until("slow", ["failed"], 15_000);
    assert.equal(slow.runs.length, 1);
    assert.equal(slow.runs[0]!.timedOut, true);
    // The command's child was in its process group: killed with it.
    const pid = Number(readFileSync(left, "utf8"));
    await waitFor(`the timed-out job's child ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), { timeoutMs: 8000 });
    log(`--on one, --retries, --timeout: ${secs(t0)}`);
  });

  it("a job whose spec in the KV is bad is listed as a problem and never runs; a good one still runs", async () => {
    const marker = join(dir, "bad-ran");
    // A spec with its command as a shell string, as a careless writer of the KV might store it.
    const bad = JSON.stringify({ v: 1, name: "broken", argv: `touch ${marker}`, on: "one", retries: 0, createdAt: Date.now() });
    const put = await etcdctl("put", "raptiformica/jobs/broken/spec", bad);
    assert.equal(put.exitCode, 0, put.stderr);
    // Stored and listed the way an operator machine does it, through a member.
    const via = new ViaMember({ members: async () => [c.channel(1)], mine: () => undefined, log: createLogger(false) });
    const stored = await via.jobRun(checkJobRequest({ name: "good", on: "all", argv: ["true"] }));
    assert.equal(stored.members?.length, 3);
    const good = await until("good", ["succeeded", "failed"]);
    assert.equal(good.state, "succeeded");
    assert.equal(good.runs.length, 3);
    const ls = await via.jobList();
    assert.equal(ls.jobs.find((j) => j.name === "broken")?.state, "bad spec");
    assert.equal(ls.jobs.find((j) => j.name === "good")?.state, "succeeded");
    const problem = ls.problems.find((p) => p.key === "raptiformica/jobs/broken/spec");
    assert.match(problem?.message ?? "", /spec of job broken .*argv/);
    const text = await c.rfOk(1, ["job", "ls"]);
    assert.match(text, /^problems:\n\s+- The spec of job broken/m);
    assert.equal((await show("broken")).runs.length, 0);
    assert.equal(existsSync(marker), false, "the bad spec's command never ran");
  });

  it("job cancel ends the running processes of a job on every member; unknown jobs exit 66", async () => {
    const t0 = performance.now();
    await c.rfOk(0, ["job", "run", "--name", "sleeper", "--on", "all", "--", "sleep", "300"]);
    await until("sleeper", ["running"]);
    await waitFor("3 running runs of sleeper", async () => (await show("sleeper")).runs.filter((r) => r.outcome === "running").length === 3, { timeoutMs: 15_000, intervalMs: 300 });
    assert.match(await c.rfOk(2, ["job", "cancel", "sleeper"]), /cancelled/);
    const j = await until("sleeper", ["cancelled"], 15_000);
    assert.deepEqual(j.runs.map((r) => r.outcome), ["cancelled", "cancelled", "cancelled"]);
    assert.ok(j.cancelledAt !== undefined);
    log(`cancel ended 3 runs: ${secs(t0)}`);
    assert.match(await c.rfOk(1, ["job", "cancel", "sleeper"]), /already cancelled/);
    for (const args of [["job", "show", "nope"], ["job", "cancel", "nope"]]) {
      const r = await c.rf(0, args);
      assert.equal(r.exitCode, 66, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /No job named nope/);
    }
    const taken = await c.rf(0, ["job", "run", "--name", "sleeper", "--", "true"]);
    assert.equal(taken.exitCode, 1);
    assert.match(taken.stderr, /A job named sleeper is already in the cluster/);
  });

  it("job rm removes a finished job with its run records; a running one is refused until it is cancelled", async () => {
    const t0 = performance.now();
    const listed = async () => (JSON.parse(await c.rfOk(0, ["job", "ls", "--json"])) as { jobs: { name: string }[] }).jobs.map((j) => j.name);
    const keysOf = async (name: string) => {
      const r = await etcdctl("get", "--prefix", "--keys-only", `raptiformica/jobs/${name}/`);
      assert.equal(r.exitCode, 0, r.stderr);
      return r.stdout.split("\n").filter(Boolean);
    };
    await c.rfOk(0, ["job", "run", "--name", "rmdone", "--", "true"]);
    await until("rmdone", ["succeeded"]);
    assert.ok((await keysOf("rmdone")).some((k) => k.includes("/runs/")), "its run record is there before");
    assert.match(await c.rfOk(1, ["job", "rm", "rmdone"]), /^job rmdone removed, with its 1 run record\(s\)\.$/m);
    assert.ok(!(await listed()).includes("rmdone"), "job ls no longer lists it");
    assert.deepEqual(await keysOf("rmdone"), [], "spec and run records gone from the KV");
    const gone = await c.rf(2, ["job", "show", "rmdone"]);
    assert.equal(gone.exitCode, 66, gone.stderr);
    assert.match(gone.stderr, /No job named rmdone/);

    await c.rfOk(0, ["job", "run", "--name", "rmlive", "--", "sleep", "300"]);
    await until("rmlive", ["running"]);
    const refused = await c.rf(1, ["job", "rm", "rmlive"]);
    assert.notEqual(refused.exitCode, 0, refused.stdout);
    assert.match(refused.stderr, /Not removed: job rmlive has a run going \(one-1 on n\d\): `raptiformica job cancel rmlive` first/);
    assert.equal((await show("rmlive")).state, "running", "a refused rm leaves it as it was");
    assert.match(await c.rfOk(0, ["job", "cancel", "rmlive"]), /cancelled/);
    await until("rmlive", ["cancelled"], 15_000);
    assert.match(await c.rfOk(2, ["job", "rm", "rmlive"]), /^job rmlive removed, with its 1 run record\(s\)\.$/m);
    assert.ok(!(await listed()).includes("rmlive"));
    assert.deepEqual(await keysOf("rmlive"), []);
    assert.equal((await c.rf(0, ["job", "show", "rmlive"])).exitCode, 66);
    log(`job rm of a finished, a running and a cancelled job: ${secs(t0)}`);
  });

  it("--restart always: an agent killed with SIGKILL leaves no second instance: its next process ends the leftover, and the service runs again", async () => {
    const pidFile = join(dir, "svc-agent-pid");
    await c.rfOk(0, ["job", "run", "--name", "svc-agent", "--restart", "always", "--", "sh", "-c", `echo $$ >> ${pidFile}; exec sleep 300`]);
    const first = await until("svc-agent", ["running"]);
    const holder = first.runs.find((r) => r.outcome === "running")!;
    const i = lab.nodes.findIndex((n) => n.name === holder.member);
    const oldPid = Number(await waitFor("the service's pid", () => readFileSync(pidFile, "utf8").trim().split("\n")[0], { timeoutMs: 5000 }));
    const agentPid = Number(readFileSync(join(lab.nodes[i]!.cacheDir, "node", "run", "agent.pid"), "utf8"));
    const t0 = performance.now();
    process.kill(agentPid, "SIGKILL");
    // The keeper starts the agent again within seconds; its runner ends what the dead one left.
    await waitFor(`the leftover service process ${oldPid} to be gone`, () => !existsSync(`/proc/${oldPid}`), { timeoutMs: 30_000, intervalMs: 200 });
    log(`leftover of a SIGKILLed agent ended after ${secs(t0)}`);
    const j = await waitFor(
      "the service running again",
      async () => {
        const a = await show("svc-agent");
        if (!a.runs.some((r) => r.attempt > 1 && r.outcome === "running")) throw new Error(JSON.stringify(a.runs.map((r) => [r.id, r.member, r.outcome])));
        return a;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.equal(j.runs.filter((r) => r.outcome === "running").length, 1);
    const pids = readFileSync(pidFile, "utf8").trim().split("\n").map(Number);
    assert.equal(pids.filter((p) => existsSync(`/proc/${p}`)).length, 1, `one instance alive of ${pids.join(", ")}`);
    assert.match(await c.rfOk(0, ["job", "cancel", "svc-agent"]), /cancelled/);
    await until("svc-agent", ["cancelled"], 15_000);
  });

  it("--restart always: a service runs on one member; when that member is killed, another runs it; job show tells the story", async () => {
    // Killing a member must leave a quorum: wait until all three vote.
    await waitFor(
      "three voters",
      async () => {
        const m = await c.members(0);
        const voters = m.members.filter((x) => x.role === "leader" || x.role === "voter").length;
        if (voters !== 3) throw new Error(JSON.stringify(m.members.map((x) => [x.name, x.role])));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await c.rfOk(0, ["job", "run", "--name", "svc", "--restart", "always", "--", "sleep", "300"]);
    const first = await until("svc", ["running"]);
    const holder = first.runs.find((r) => r.outcome === "running")!;
    const victim = lab.nodes.findIndex((n) => n.name === holder.member);
    const survivor = victim === 0 ? 1 : 0;
    const t0 = performance.now();
    await lab.killNode(victim);
    // The claim goes with the killed member's node record lease: its TTL (5 s) plus the time
    // etcd takes to notice (a killed member's record went after 13–21 s in the links test).
    const after = await waitFor(
      "the service running on another member",
      async () => {
        const j = jobAnswer.parse(JSON.parse(await c.rfOk(survivor, ["job", "show", "--json", "svc"], 30_000)));
        const now = j.runs.find((r) => r.outcome === "running");
        if (!now || now.member === holder.member) throw new Error(JSON.stringify(j.runs.map((r) => [r.id, r.member, r.outcome])));
        return j;
      },
      { timeoutMs: 45_000, intervalMs: 500 },
    );
    log(`service taken over from ${holder.member} after ${secs(t0)}`);
    assert.equal(after.state, "running");
    assert.deepEqual(
      after.runs.map((r) => [r.attempt, r.outcome]),
      [
        [1, "lost"],
        [2, "running"],
      ],
    );
    assert.ok(BigInt(after.runs[1]!.fence) > BigInt(after.runs[0]!.fence), "the new run's fence is newer");
    const table = await c.rfOk(survivor, ["job", "show", "svc"]);
    assert.match(table, new RegExp(`one-1\\s+${holder.member}\\s+lost`));
    assert.match(await c.rfOk(survivor, ["job", "cancel", "svc"]), /cancelled/);
    await waitFor("the service cancelled", async () => jobAnswer.parse(JSON.parse(await c.rfOk(survivor, ["job", "show", "--json", "svc"]))).state === "cancelled", { timeoutMs: 15_000, intervalMs: 300 });
  });
});
