import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { restartDelayMs, runOutcome, slotView, nextClaim } from "../../src/consensus/job-plan.ts";
import { claimRun, leaseTimeLeft, readJobs, recordLostEnd, standingClaims } from "../../src/consensus/job-kv.ts";
import { jobSpecKey, parseJobEntries, JOBS_PREFIX, type JobRun } from "../../src/consensus/jobs.ts";
import { claimOverdue } from "../../src/ops/job/runner.ts";
import { etcdForSuite, haveEtcd } from "../helpers/etcd-single.ts";

const key = (i: number) => i.toString(16).repeat(64);
const run = (id: string, extra: Partial<JobRun> = {}): JobRun => ({ v: 1, id, slot: id.replace(/-\d+$/, ""), attempt: Number(id.split("-").at(-1)), member: "n1", publicKey: key(1), startedAt: 1000, ...extra });

describe("a run ended by fencing (its claim gone or not confirmed for the lease's TTL)", () => {
  it("is overdue once its lease was last known kept alive longer ago than the TTL, not before", () => {
    assert.equal(claimOverdue(10_000, 5000, 15_000), false);
    assert.equal(claimOverdue(10_000, 5000, 15_001), true);
  });

  it("counts as lost, even with its end recorded: it runs again without using a retry, with no restart delay", () => {
    const entries = [
      { key: jobSpecKey("j"), value: JSON.stringify({ v: 1, name: "j", argv: ["true"], on: "one", retries: 0, createdAt: 1 }), createRevision: "5", modRevision: "5" },
      { key: `${JOBS_PREFIX}j/runs/one-1`, value: JSON.stringify(run("one-1", { endedAt: 1500, exitCode: null, signal: "SIGTERM", lost: true, fence: "6" })), createRevision: "6", modRevision: "9" },
    ];
    const { jobs, problems } = parseJobEntries(entries);
    assert.deepEqual(problems, []);
    const job = jobs[0]!;
    assert.equal(runOutcome(job.runs[0]!, job.claims), "lost");
    assert.equal(slotView(job, "one").failures, 0);
    assert.deepEqual(nextClaim(job, key(2), 2000), { slot: "one", attempt: 2, notBefore: 0 });
    assert.equal(restartDelayMs(job.runs), 0);
  });
});

describe("recording a lost run's end, against a real etcd", { skip: haveEtcd ? false : "etcd is not installed" }, () => {
  const etcd = etcdForSuite();

  const submit = async (name: string) => {
    await etcd.client.put(jobSpecKey(name)).value(JSON.stringify({ v: 1, name, argv: ["true"], on: "one", retries: 0, createdAt: 1 }));
    return String((await etcd.client.get(jobSpecKey(name)).exec()).kvs[0]!.mod_revision);
  };

  it("confirms standing claims by their fence; a claim that expired with its lease is not confirmed, and the lost end goes into its unchanged record only", async () => {
    const specRev = await submit("a");
    const lease = etcd.client.lease(2, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const fence = await claimRun(etcd.client, "a", specRev, run("one-1"), { v: 1, run: "one-1", publicKey: key(1), member: "n1" }, leaseId);
    assert.ok(fence);
    assert.equal((await standingClaims(etcd.client, [{ name: "a", slot: "one" }])).get("a/one"), fence);
    // The lease's time left says when its last keep-alive landed (here: its grant).
    const t = await leaseTimeLeft(etcd.client, leaseId);
    assert.equal(t.grantedMs, 2000);
    assert.ok(t.leftMs >= 1000 && t.leftMs <= 2000, `${t.leftMs} ms left`);
    await lease.revoke();
    assert.equal((await leaseTimeLeft(etcd.client, leaseId)).leftMs, 0, "an expired lease has no time left"); // what the cluster's side does once the cut member's lease expires
    assert.equal((await standingClaims(etcd.client, [{ name: "a", slot: "one" }])).size, 0);
    const lost = { ...run("one-1"), fence, endedAt: 2000, exitCode: null, signal: "SIGTERM", outputTail: "x", lost: true as const };
    assert.equal(await recordLostEnd(etcd.client, "a", lost), "recorded");
    const j = (await readJobs(etcd.client)).jobs.find((x) => x.name === "a")!;
    assert.equal(runOutcome(j.runs[0]!, j.claims), "lost");
    assert.equal(j.runs[0]!.endedAt, 2000);
    // Written once: the record is no longer the one claimed, so a second write is refused.
    assert.equal(await recordLostEnd(etcd.client, "a", { ...lost, endedAt: 3000 }), "gone");
    // A removed job is not brought back by a late lost end.
    await etcd.client.delete().prefix(`${JOBS_PREFIX}a/`);
    assert.equal(await recordLostEnd(etcd.client, "a", lost), "gone");
    assert.equal((await etcd.client.getAll().prefix(`${JOBS_PREFIX}a/`).keys()).length, 0);
  });

  it("a claim that still stands (the KV was only slow) is freed with the lost end, so the slot runs again", async () => {
    const specRev = await submit("b");
    const lease = etcd.client.lease(30, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const fence = await claimRun(etcd.client, "b", specRev, run("one-1"), { v: 1, run: "one-1", publicKey: key(1), member: "n1" }, leaseId);
    assert.ok(fence);
    assert.equal(await recordLostEnd(etcd.client, "b", { ...run("one-1"), fence, endedAt: 2000, exitCode: null, lost: true }), "released");
    const j = (await readJobs(etcd.client)).jobs.find((x) => x.name === "b")!;
    assert.equal(j.claims.length, 0);
    assert.deepEqual(nextClaim(j, key(2)), { slot: "one", attempt: 2, notBefore: 0 });
    await lease.revoke();
  });
});
