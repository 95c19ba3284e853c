import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { dueTime, jobState, nextClaim, nextDueTime, scheduleSlot } from "../../src/consensus/job-plan.ts";
import { JOBS_PREFIX, parseJobEntries, type JobEntry, type JobRun } from "../../src/consensus/jobs.ts";
import { checkJobRequest, jobRunArgv, specFor } from "../../src/ops/job/jobs.ts";
import { parseTimeOfRun } from "../../src/util/duration.ts";
import { UserError } from "../../src/util/errors.ts";

const key = (i: number) => i.toString(16).repeat(64);
let rev = 100;
const entry = (k: string, value: unknown): JobEntry => {
  rev++;
  return { key: `${JOBS_PREFIX}${k}`, value: JSON.stringify(value), createRevision: String(rev), modRevision: String(rev) };
};
const T0 = Date.UTC(2026, 11, 1, 4, 0, 0);
const every10 = { first: T0, every: 10 };
const spec = (schedule: unknown, extra: Record<string, unknown> = {}) => ({ v: 1, name: "j", argv: ["true"], on: "one", retries: 0, createdAt: 1, schedule, ...extra });
const run = (slot: string, attempt: number, extra: Partial<JobRun> = {}): JobRun => ({ v: 1, id: `${slot}-${attempt}`, slot, attempt, member: "n1", publicKey: key(1), startedAt: 1, ...extra });
const parse = (...es: JobEntry[]) => parseJobEntries(es);

describe("schedules (--every / --at): due times and slots", () => {
  it("names a slot by its due time, to the second, sorting as time does", () => {
    assert.equal(scheduleSlot(T0), "20261201T040000Z");
    assert.ok(scheduleSlot(T0 + 10_000) > scheduleSlot(T0 + 9_000));
  });
  it("the latest due time only: slots missed while no member ran them are caught up once", () => {
    assert.equal(dueTime(every10, T0 - 1), undefined);
    assert.equal(dueTime(every10, T0), T0);
    assert.equal(dueTime(every10, T0 + 9_999), T0);
    assert.equal(dueTime(every10, T0 + 95_000), T0 + 90_000, "nine missed slots: the latest one is due, once");
    assert.equal(nextDueTime(every10, T0 + 95_000), T0 + 100_000);
    assert.equal(nextDueTime({ first: T0 }, T0 - 5), T0);
    assert.equal(nextDueTime({ first: T0 }, T0), undefined, "an --at time runs once");
  });
});

describe("what a member may claim of a scheduled job", () => {
  const slot = (t: number) => scheduleSlot(t);
  it("the due slot while nobody ran it; then the next due time, not before it", () => {
    const fresh = parse(entry("j/spec", spec(every10))).jobs[0]!;
    assert.deepEqual(nextClaim(fresh, key(1), T0 + 3_000), { slot: slot(T0), attempt: 1, notBefore: 0 });
    assert.equal(jobState(fresh, T0 + 3_000), "pending");
    const ran = parse(entry("j/spec", spec(every10)), entry(`j/runs/${slot(T0)}-1`, run(slot(T0), 1, { endedAt: 2, exitCode: 0 }))).jobs[0]!;
    assert.deepEqual(nextClaim(ran, key(2), T0 + 3_000), { slot: slot(T0 + 10_000), attempt: 1, notBefore: T0 + 10_000 }, "a slot done is never claimed again");
    assert.equal(jobState(ran, T0 + 3_000), "scheduled");
    assert.deepEqual(nextClaim(ran, key(2), T0 + 10_001), { slot: slot(T0 + 10_000), attempt: 1, notBefore: 0 });
  });
  it("runs never overlap: nothing is claimed while a run of the job holds its claim", () => {
    const { jobs } = parse(entry("j/spec", spec(every10)), entry(`j/runs/${slot(T0)}-1`, run(slot(T0), 1)), entry(`j/claims/${slot(T0)}`, { v: 1, run: `${slot(T0)}-1`, publicKey: key(1), member: "n1" }));
    assert.equal(nextClaim(jobs[0]!, key(2), T0 + 25_000), undefined);
    assert.equal(jobState(jobs[0]!, T0 + 25_000), "running");
  });
  it("a run lost with its member is run again in its slot while that is still the latest due; else the slot is left", () => {
    const lost = parse(entry("j/spec", spec(every10)), entry(`j/runs/${slot(T0)}-1`, run(slot(T0), 1))).jobs[0]!;
    assert.deepEqual(nextClaim(lost, key(2), T0 + 5_000), { slot: slot(T0), attempt: 2, notBefore: 0 });
    assert.deepEqual(nextClaim(lost, key(2), T0 + 12_000), { slot: slot(T0 + 10_000), attempt: 1, notBefore: 0 });
  });
  it("retries stay in their slot; an --at job ends as its one slot did", () => {
    const failed = (retries: number) => parse(entry("j/spec", spec({ first: T0 }, { retries })), entry(`j/runs/${slot(T0)}-1`, run(slot(T0), 1, { endedAt: 2, exitCode: 3 }))).jobs[0]!;
    assert.deepEqual(nextClaim(failed(1), key(1), T0 + 1), { slot: slot(T0), attempt: 2, notBefore: 0 });
    assert.equal(nextClaim(failed(0), key(1), T0 + 1), undefined);
    assert.equal(jobState(failed(0), T0 + 1), "failed");
    const waiting = parse(entry("j/spec", spec({ first: T0 }))).jobs[0]!;
    assert.deepEqual(nextClaim(waiting, key(1), T0 - 60_000), { slot: slot(T0), attempt: 1, notBefore: T0 });
    assert.equal(jobState(waiting, T0 - 60_000), "scheduled");
  });
  it("a cancelled scheduled job is claimed no more", () => {
    const { jobs } = parse(entry("j/spec", spec(every10)), entry("j/cancelled", { v: 1, at: 5 }));
    assert.equal(nextClaim(jobs[0]!, key(1), T0 + 1), undefined);
    assert.equal(jobState(jobs[0]!, T0 + 1), "cancelled");
  });
  it("the KV format refuses a schedule on --on all, on a service, and a first time that is not a whole second", () => {
    for (const bad of [spec(every10, { on: "all", members: [key(1)] }), spec(every10, { restart: "always" }), spec({ first: T0 + 1, every: 10 }), spec({ first: T0, every: 0 })]) {
      const r = parse(entry("j/spec", bad));
      assert.equal(r.jobs[0]!.spec, undefined, JSON.stringify(bad));
      assert.match(r.problems[0]!.message, /spec of job j/);
    }
  });
});

describe("--every and --at on the command line", () => {
  const now = Date.UTC(2026, 11, 1, 4, 20, 30, 500);
  it("take durations and RFC 3339 or HH:MM (the next such local time)", () => {
    const r = checkJobRequest({ every: "10s", at: "2026-12-01T05:00:00+01:00", argv: ["true"] }, now);
    assert.equal(r.every, 10);
    assert.equal(r.at, Date.UTC(2026, 11, 1, 4, 0, 0));
    const clock = parseTimeOfRun("04:00", now);
    assert.ok(clock.ok && clock.ms > now && clock.ms <= now + 86_400_000 && new Date(clock.ms).getMinutes() === 0 && new Date(clock.ms).getHours() === 4);
    // What goes to a member is the absolute time, so its own clock zone does not move it.
    const back = checkJobRequest({ every: jobRunArgv(r)[jobRunArgv(r).indexOf("--every") + 1], at: jobRunArgv(r)[jobRunArgv(r).indexOf("--at") + 1], argv: ["true"] }, now);
    assert.deepEqual([back.every, back.at], [r.every, r.at]);
  });
  it("the first due time of --every alone is now, to the second", () => {
    const s = specFor(checkJobRequest({ every: "1m", argv: ["true"] }, now), [], {}, now);
    assert.deepEqual(s.schedule, { first: Date.UTC(2026, 11, 1, 4, 20, 31), every: 60 });
  });
  it("refuses what cannot be scheduled, saying why", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ every: "500ms" }, /whole seconds/],
      [{ every: "1.5s" }, /whole seconds/],
      [{ every: "soon" }, /--every: "soon" is not a duration/],
      [{ at: "tomorrow" }, /--at: "tomorrow" is not a time/],
      [{ at: "2026-12-01T04:00:00" }, /is not a time/],
      [{ at: "2026-12-01T03:00:00Z" }, /has passed/],
      [{ every: "10s", on: "all" }, /--on one/],
      [{ every: "10s", restart: "always" }, /--on one/],
    ];
    for (const [o, re] of cases) assert.throws(() => checkJobRequest({ ...o, argv: ["true"] }, now), (e: unknown) => e instanceof UserError && re.test(e.message), JSON.stringify(o));
  });
});
