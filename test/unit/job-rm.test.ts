import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { JOBS_PREFIX, parseJobEntries, type JobEntry } from "../../src/consensus/jobs.ts";
import { removalRefusal } from "../../src/ops/job/jobs.ts";

const key = "1".repeat(64);
let rev = 10;
const entry = (k: string, value: unknown): JobEntry => ({ key: `${JOBS_PREFIX}${k}`, value: JSON.stringify(value), createRevision: String(++rev), modRevision: String(rev) });
const spec = (extra: Record<string, unknown> = {}) => entry("j/spec", { v: 1, name: "j", argv: ["true"], on: "one", retries: 0, createdAt: 1, ...extra });
const ended = (exitCode: number) => entry("j/runs/one-1", { v: 1, id: "one-1", slot: "one", attempt: 1, member: "n1", publicKey: key, startedAt: 1, endedAt: 2, exitCode });
const claim = entry("j/claims/one", { v: 1, run: "one-1", publicKey: key, member: "n1" });
const job = (...es: JobEntry[]) => parseJobEntries(es).jobs[0]!;

describe("job rm: what may be removed", () => {
  it("a finished or cancelled job with no run going", () => {
    assert.equal(removalRefusal(job(spec(), ended(0))), undefined);
    assert.equal(removalRefusal(job(spec(), ended(3))), undefined);
    assert.equal(removalRefusal(job(spec({ restart: "always" }), entry("j/cancelled", { v: 1, at: 3 }))), undefined);
  });
  it("not while a run holds its claim, nor while more of it may start (pending, scheduled, a service), saying to cancel first", () => {
    assert.match(removalRefusal(job(spec(), entry("j/runs/one-1", { v: 1, id: "one-1", slot: "one", attempt: 1, member: "n1", publicKey: key, startedAt: 1 }), claim)) ?? "", /has a run going \(one-1 on n1\).*job cancel j/);
    assert.match(removalRefusal(job(spec())) ?? "", /is pending: more of it may still start/);
    assert.match(removalRefusal(job(spec({ schedule: { first: 0, every: 60 } }))) ?? "", /job cancel j/);
    assert.match(removalRefusal(job(spec({ restart: "always" }), ended(0))) ?? "", /job cancel j/);
  });
});
