import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { JobAnswer, RunView } from "../../src/ops/cluster/job-wire.ts";
import { pickRun } from "../../src/ops/job/logs.ts";
import { UserError } from "../../src/util/errors.ts";

const run = (id: string, startedAt: number): RunView => ({ id, slot: "one", attempt: 1, member: "n1", publicKey: "a".repeat(64), outcome: "succeeded", startedAt, fence: "7" });
const job = (runs: RunView[]): JobAnswer => ({ name: "j", state: "succeeded", slots: [], runs, problems: [] });

describe("job logs: which run", () => {
  it("the latest started by default, or the one named", () => {
    const j = job([run("one-1", 5), run("one-3", 9), run("one-2", 7)]);
    assert.equal(pickRun(j).id, "one-3");
    assert.equal(pickRun(j, "one-2").id, "one-2");
  });
  it("names the runs there are when the one asked for is not, and says when there is none yet", () => {
    assert.throws(() => pickRun(job([run("one-1", 1)]), "one-9"), (e: unknown) => e instanceof UserError && /has no run one-9; its runs: one-1/.test(e.message));
    assert.throws(() => pickRun(job([])), (e: unknown) => e instanceof UserError && /no runs yet/.test(e.message));
  });
});
