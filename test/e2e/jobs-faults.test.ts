/**
 * Jobs under cluster faults on a real 3-member lab cluster (yggdrasil, etcd and the agents with
 * their job runners, in network namespaces), driven through the built CLI: `job logs` prints a
 * run's whole log on its member (`--follow` until it ends), the tail and where the log is
 * elsewhere; an `--on one` run
 * whose member is cut off by a partition is claimed by no other member while that member's
 * lease lives, then by another with a newer fence; the cut runner, unable to confirm its claim
 * for the lease's TTL, ends its command itself, and after healing records the run as lost (never
 * over the newer run) while its fence is refused (`job fence-check`). A job run `--every`
 * keeps its schedule while the etcd leader is moved and while the member that ran its last slot
 * is killed: each due slot runs at most once cluster-wide, and no more than one slot in a row
 * is skipped; the job_start / job_end hooks fire for each run with the run as payload.
 *
 * The lab nodes share this machine's file system: what a command appends to a temp file is seen
 * by the test whichever member ran it.
 */
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jobAnswer, type JobAnswer } from "../../src/ops/cluster/job-wire.ts";
import type { LabCluster } from "../helpers/cluster.ts";
import { closeJobsLab, etcdctlOn, jobsLab, jobsLabMissing, type JobsLab } from "../helpers/jobs-lab.ts";
import { Lab, waitFor } from "../lab/index.ts";

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** The due time a scheduled run's slot names (`20261201T041500Z`), ms since the epoch. */
function slotTime(slot: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(slot);
  assert.ok(m, `slot ${slot}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

describe("jobs under faults on a lab cluster", { skip: jobsLabMissing(), timeout: 150_000 }, () => {
  let j: JobsLab | undefined;
  let lab: Lab;
  let c: LabCluster;
  let dir: string;
  /** The members still alive (killed ones are dropped). */
  let alive: number[] = [0, 1, 2];

  const show = async (name: string): Promise<JobAnswer> => jobAnswer.parse(JSON.parse(await c.rfOk(alive[0]!, ["job", "show", "--json", name], 30_000)));
  const etcdctl = async (i: number, ...args: string[]) => {
    const r = await etcdctlOn(lab, i, ["--command-timeout", "5s", ...args]);
    assert.equal(r.exitCode, 0, `etcdctl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    const t0 = performance.now();
    // Faults must leave a quorum: wait until all three vote.
    j = await jobsLab({ tmpPrefix: "rf-jobs-faults-", voters: 3 });
    ({ lab, c, dir } = j);
    // job_start / job_end handlers on every member record the events they are given.
    for (const hook of ["job_start", "job_end"]) await c.rfOk(0, ["config", "set", `platform/default/hooks/${hook}/record/command`, 'cat >> "$RAPTIFORMICA_CACHE_DIR/job-hooks.jsonl"']);
    log(`3-voter lab cluster: ${secs(t0)}`);
  });

  after(() => closeJobsLab(j));

  it("job logs: the whole log of a run on the member that ran it, --follow until it ends; on another member the tail and where the log is", async () => {
    await c.rfOk(0, ["job", "run", "--name", "logs", "--", "sh", "-c", "seq 1 3000; sleep 2; echo done"]);
    const r = await waitFor(
      "logs running",
      async () => {
        const run = (await show("logs")).runs[0];
        if (!run) throw new Error("no run yet");
        return run;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const m = lab.nodes.findIndex((n) => n.name === r.member);
    const t0 = performance.now();
    const followed = await c.rf(m, ["job", "logs", "--follow", "logs"], 30_000);
    assert.equal(followed.exitCode, 0, followed.stderr);
    const whole = `${Array.from({ length: 3000 }, (_, k) => k + 1).join("\n")}\ndone\n`;
    assert.equal(followed.stdout, whole, "the whole output, followed to the end of the run");
    log(`job logs --follow returned ${secs(t0)} after the run started being followed`);
    const elsewhere = await c.rf((m + 1) % 3, ["job", "logs", "logs"], 30_000);
    assert.equal(elsewhere.exitCode, 0, elsewhere.stderr);
    assert.ok(elsewhere.stdout.length <= 4096 && whole.endsWith(elsewhere.stdout) && elsewhere.stdout.endsWith("done\n"), "the tail from the KV");
    assert.match(elsewhere.stderr, new RegExp(`whole log is on member ${r.member}`));
    const none = await c.rf(m, ["job", "logs", "--run", "nope-1", "logs"]);
    assert.equal(none.exitCode, 1);
    assert.match(none.stderr, /has no run nope-1/);
  });

  it("--on one under a partition: no second claim while the cut runner's lease lives; then another member claims it with a newer fence; the cut runner ends its command within the TTL; after healing the stale fence is refused and the run recorded lost", async () => {
    const fences = join(dir, "fences");
    await c.rfOk(0, ["job", "run", "--name", "part", "--", "sh", "-c", `echo "$RAPTIFORMICA_JOB_FENCE $$" >> ${fences}; exec sleep 300`]);
    const first = await waitFor(
      "part running",
      async () => {
        const j = await show("part");
        const r = j.runs.find((x) => x.outcome === "running");
        if (!r || !existsSync(fences)) throw new Error(JSON.stringify(j.runs));
        return r;
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    const cut = lab.nodes.findIndex((n) => n.name === first.member);
    const others = alive.filter((i) => i !== cut);
    const [oldFence, oldPid] = readFileSync(fences, "utf8").trim().split(" ");
    assert.equal(oldFence, first.fence);
    const t0 = performance.now();
    // The cut runner cannot confirm its claim: it ends the command itself, within the claim
    // lease's TTL (node_ttl, 5 s) and a check interval after the cut, without hearing etcd.
    const staleEnded = waitFor(`the stale command ${oldPid} to be ended by its cut runner`, () => (existsSync(`/proc/${oldPid}`) ? undefined : performance.now()), { timeoutMs: 20_000, intervalMs: 100 });
    staleEnded.catch(() => undefined); // awaited below; not unhandled if the test fails first
    await lab.unplug(cut);
    // Until the cut member's lease expires its claim stands: every look from the majority side
    // shows the one run of the first fence, and nothing else ran.
    let looks = 0;
    const taken = await waitFor(
      "another member to claim the run",
      async () => {
        const j = jobAnswer.parse(JSON.parse(await c.rfOk(others[0]!, ["job", "show", "--json", "part"], 30_000)));
        looks++;
        const running = j.runs.filter((r) => r.outcome === "running");
        assert.ok(running.length <= 1, `never two live claims: ${JSON.stringify(j.runs)}`);
        if (running[0]?.fence === first.fence) {
          assert.equal(readFileSync(fences, "utf8").trim().split("\n").length, 1, "nothing else ran while the claim stood");
          throw new Error("the first claim still stands");
        }
        if (!running[0]) throw new Error(JSON.stringify(j.runs.map((r) => [r.id, r.outcome])));
        return { j, at: performance.now() };
      },
      { timeoutMs: 45_000, intervalMs: 300 },
    );
    const claimedAfter = (taken.at - t0) / 1000;
    log(`the cut member's claim stood ${claimedAfter.toFixed(1)} s (${looks} looks); then ${taken.j.runs.find((r) => r.outcome === "running")!.member} claimed it`);
    const second = taken.j.runs.find((r) => r.outcome === "running")!;
    assert.notEqual(second.member, first.member);
    assert.ok(BigInt(second.fence) > BigInt(first.fence), "a new fence, newer than the cut one");
    assert.equal(taken.j.runs.find((r) => r.id === first.id)?.outcome, "lost");
    // The lease (the node TTL, 5 s) lived out before the slot was taken.
    assert.ok(claimedAfter >= 3, `claimed again only after the lease: ${claimedAfter} s`);
    const endedAfter = ((await staleEnded) - t0) / 1000;
    log(`the cut runner ended its command ${endedAfter.toFixed(1)} s after the cut (TTL 5 s), ${(claimedAfter - endedAfter).toFixed(1)} s before the majority's side saw the new claim`);
    assert.ok(endedAfter <= 5 + 3, `the stale command was ended within the TTL and 3 s of the cut: ${endedAfter.toFixed(1)} s`);
    assert.match(readFileSync(join(lab.nodes[cut]!.cacheDir, "node", "log", "jobs", "part", `${first.id}.log`), "utf8"), /raptiformica: run one-1 ended by its runner: its claim \(fence \d+\) could not be confirmed: its lease was last known kept alive [\d.]+ s ago, longer than its TTL \(5 s/);
    const stale = await c.rf(others[0]!, ["job", "fence-check", "part", first.fence]);
    assert.equal(stale.exitCode, 1, stale.stderr);
    assert.match(stale.stdout, new RegExp(`is stale: the claims standing now have fence ${second.fence}`));
    assert.equal((await c.rf(others[1]!, ["job", "fence-check", "part", second.fence])).exitCode, 0);

    const healed = performance.now();
    await lab.plug(cut);
    // Its fence is refused on the healed member too; once it reaches the KV, its runner records
    // the run's end as lost, leaving the newer run as it is.
    const there = await c.rf(cut, ["job", "fence-check", "part", first.fence], 30_000);
    assert.equal(there.exitCode, 1, there.stdout + there.stderr);
    const j = await waitFor(
      "the stale run's end recorded as lost",
      async () => {
        const a = await show("part");
        if (a.runs.find((r) => r.id === first.id)?.endedAt === undefined) throw new Error(JSON.stringify(a.runs));
        return a;
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    log(`after healing, the stale run's end was recorded as lost within ${secs(healed)}`);
    const old = j.runs.find((r) => r.id === first.id)!;
    assert.equal(old.outcome, "lost");
    assert.ok(old.signal === "SIGTERM" || old.signal === "SIGKILL", JSON.stringify(old));
    const newer = j.runs.filter((r) => r.outcome === "running");
    assert.equal(newer.length, 1);
    assert.equal(newer[0]!.fence, second.fence, "the newer run is untouched");
    assert.match(await c.rfOk(others[0]!, ["job", "cancel", "part"]), /cancelled/);
    await waitFor("part cancelled", async () => (await show("part")).state === "cancelled", { timeoutMs: 15_000, intervalMs: 300 });
    // The cluster is whole again before the next test's faults.
    await c.waitAlive(others[0]!, 3, 60_000);
  });

  it("--every keeps its schedule while the etcd leader is moved and the member that ran the last slot is killed: no slot runs twice, no two in a row are skipped", async () => {
    const period = 4;
    const ran = join(dir, "ticks");
    const t0 = performance.now();
    await c.rfOk(0, ["job", "run", "--name", "tick", "--every", `${period}s`, "--", "sh", "-c", `echo "$RAPTIFORMICA_JOB_RUN $RAPTIFORMICA_JOB_FENCE" >> ${ran}`]);
    const lines = () => (existsSync(ran) ? readFileSync(ran, "utf8").trim().split("\n").filter(Boolean) : []);
    const ranCount = async (n: number, what: string) => waitFor(`${n} slots run (${what})`, () => lines().length >= n, { timeoutMs: (n + 2) * period * 1000 + 15_000, intervalMs: 200 });

    await ranCount(2, "before any fault");
    // Move the etcd leader to another member: asked of the leader itself. The ids are uint64,
    // beyond JSON numbers' precision: read as digits.
    // A member promoted a moment ago may still serve 127.0.0.1 with its grpc-proxy (until its
    // etcd takes it over, one member at a time): its status is then another member's. Waited
    // for until every member answers for itself.
    let etcdMembers: { i: number; id: string; leader: boolean }[] = [];
    await waitFor(
      "every member's 127.0.0.1 to answer for its own etcd",
      async () => {
        etcdMembers = await Promise.all(
          alive.map(async (i) => {
            const out = await etcdctl(i, "endpoint", "status", "-w", "json");
            const id = /"member_id":(\d+)/.exec(out)?.[1];
            const lead = /"leader":(\d+)/.exec(out)?.[1];
            assert.ok(id && lead, out);
            return { i, id: BigInt(id).toString(16), leader: id === lead };
          }),
        );
        return new Set(etcdMembers.map((x) => x.id)).size === etcdMembers.length;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const leader = etcdMembers.find((x) => x.leader);
    assert.ok(leader, `a leader among ${JSON.stringify(etcdMembers)}`);
    const other = etcdMembers.find((x) => !x.leader)!;
    await etcdctl(leader.i, "move-leader", other.id);
    log(`leader moved from ${lab.nodes[leader.i]!.name} to ${lab.nodes[other.i]!.name} after ${secs(t0)}`);
    const movedAt = lines().length;
    await ranCount(movedAt + 2, "after the leader move");

    // Kill the member that ran the latest slot.
    const j = await show("tick");
    const last = [...j.runs].sort((a, b) => a.slot.localeCompare(b.slot)).at(-1)!;
    const victim = lab.nodes.findIndex((n) => n.name === last.member);
    await lab.killNode(victim);
    alive = alive.filter((i) => i !== victim);
    const killedAt = lines().length;
    log(`killed ${last.member}, which ran slot ${last.slot}, after ${secs(t0)}`);
    await ranCount(killedAt + 3, "after the kill");
    assert.match(await c.rfOk(alive[0]!, ["job", "cancel", "tick"], 30_000), /cancelled/);

    const slots = lines().map((l) => l.split(" ")[0]!.replace(/-\d+$/, ""));
    log(`slots run: ${slots.join(" ")}`);
    assert.equal(new Set(slots).size, slots.length, `no slot ran twice: ${slots.join(" ")}`);
    const times = slots.map(slotTime);
    for (let k = 1; k < times.length; k++) {
      const gap = (times[k]! - times[k - 1]!) / 1000;
      assert.ok(gap > 0 && gap <= 2 * period, `slots ${slots[k - 1]} → ${slots[k]}: ${gap} s apart (at most one skipped)`);
    }
    const after = await show("tick");
    const members = new Set(after.runs.map((r) => r.member));
    assert.ok(members.size >= 2, `the schedule went on on other members: ${[...members].join(", ")}`);
    assert.ok(!after.runs.slice(-3).some((r) => r.member === last.member), "the killed member ran no later slot");
    log(`--every ${period}s through a leader move and a kill: ${slots.length} slots, ${secs(t0)}`);

    // The job_start / job_end hooks fired on the members that ran the slots, with the run as payload.
    const events = lab.nodes
      .map((n) => join(n.cacheDir, "job-hooks.jsonl"))
      .filter((f) => existsSync(f))
      .flatMap((f) => readFileSync(f, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { hook: string; job: string; run: { id: string; fence: string; exitCode?: number }; recorded?: boolean }))
      .filter((e) => e.job === "tick");
    for (const line of lines()) {
      const [id, fence] = line.split(" ");
      const starts = events.filter((e) => e.hook === "job_start" && e.run.id === id);
      assert.equal(starts.length, 1, `one job_start for run ${id}`);
      assert.equal(starts[0]!.run.fence, fence);
      const ends = events.filter((e) => e.hook === "job_end" && e.run.id === id);
      // The killed member may have died between its run's end and its hook.
      if (ends.length === 0 && (after.runs.find((r) => r.id === id)?.member ?? last.member) === last.member) continue;
      assert.equal(ends.length, 1, `one job_end for run ${id}`);
      assert.equal(ends[0]!.run.exitCode, 0);
      assert.equal(ends[0]!.recorded, true);
    }
  });
});
