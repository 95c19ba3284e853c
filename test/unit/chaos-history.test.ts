/**
 * The chaos run's history (test/chaos/history.ts): workload logs and CLI runs as operations,
 * what counts as acknowledged, the lost-write check and the stall figures.
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../helpers/cli.ts";
import { checkHistory } from "../chaos/linearizability.ts";
import { cliOperation, lostWrites, parseWorkloadLog, stallsByKind, toOperations, type RecordedOp } from "../chaos/history.ts";

const line = (o: object) => JSON.stringify(o);

describe("workload log", () => {
  const log = [
    "--- 2024-01-01T00:00:00.000Z [\"node\"]",
    line({ e: "start", member: "n1", incarnation: "0", t: 990 }),
    line({ e: "invoke", id: "n1.0.0", f: "write", key: "chaos/r0", value: "n1.0.0", t: 1000 }),
    line({ e: "invoke", id: "n1.0.1", f: "read", key: "chaos/r0", t: 1001 }),
    line({ e: "ok", id: "n1.0.0", t: 1010 }),
    line({ e: "ok", id: "n1.0.1", t: 1011, value: "n1.0.0" }),
    line({ e: "invoke", id: "n1.0.2", f: "read", key: "chaos/r1", t: 1020 }),
    line({ e: "ok", id: "n1.0.2", t: 1025, value: null }),
    line({ e: "invoke", id: "n1.0.3", f: "write", key: "chaos/r1", value: "n1.0.3", t: 1030 }),
    line({ e: "err", id: "n1.0.3", t: 4030, err: "deadline exceeded" }),
    line({ e: "invoke", id: "n1.0.4", f: "read", key: "chaos/r1", t: 1040 }),
    line({ e: "err", id: "n1.0.4", t: 2040, err: "14 UNAVAILABLE" }),
    line({ e: "invoke", id: "n1.0.5", f: "write", key: "chaos/once/n1.0.5", value: "n1.0.5", t: 1050 }),
    line({ e: "invoke", id: "n1.0.6", f: "read", key: "chaos/r0", t: 1060 }),
    'node:internal stderr noise {"not": "ours"',
    '{"e":"ok","id":"n1.0.6","t":10', // torn by a kill
  ].join("\n");

  it("answered operations are ok, with what reads saw (null: no such key)", () => {
    const { ops, answers } = parseWorkloadLog(log, "n1/etcd3");
    const byRef = new Map(ops.map((o) => [o.ref, o]));
    assert.deepEqual(byRef.get("n1.0.0"), { ref: "n1.0.0", process: "n1/etcd3", key: "chaos/r0", f: "write", invoke: 1000, value: "n1.0.0", complete: 1010, outcome: "ok" });
    assert.equal(byRef.get("n1.0.1")?.value, "n1.0.0");
    assert.equal(byRef.get("n1.0.2")?.value, null);
    assert.equal(byRef.get("n1.0.2")?.outcome, "ok");
    assert.deepEqual(answers, [1010, 1011, 1025]);
  });

  it("a write with an error or without an answer may have taken effect; a read with an error did nothing", () => {
    const { ops } = parseWorkloadLog(log, "n1/etcd3");
    const byRef = new Map(ops.map((o) => [o.ref, o]));
    assert.equal(byRef.get("n1.0.3")?.outcome, "unknown");
    assert.equal(byRef.get("n1.0.3")?.complete, undefined);
    assert.equal(byRef.get("n1.0.3")?.value, "n1.0.3");
    assert.equal(byRef.get("n1.0.4")?.outcome, "fail");
    assert.equal(byRef.get("n1.0.5")?.outcome, "unknown");
    // The torn completion line does not count: the read's answer is unknown.
    assert.equal(byRef.get("n1.0.6")?.outcome, "unknown");
  });
});

describe("CLI runs", () => {
  const at = { ref: "n2/cli.1", process: "n2/cli", key: "raptiformica/chaos/c0", invoke: 100, complete: 900 };

  it("the warnings it looks for are the ones the CLI prints", () => {
    const shared = readFileSync(join(ROOT, "src", "node", "shared-config.ts"), "utf8");
    const local = readFileSync(join(ROOT, "src", "ops", "cluster", "local.ts"), "utf8");
    assert.ok(shared.includes("the cluster KV is unreachable from this member: the change is in the local cache and queued"));
    assert.ok(local.includes("the cluster KV did not answer on this member: this is the member's cached copy"));
  });

  it("config set: acknowledged on exit 0, unknown when queued or failed", () => {
    assert.equal(cliOperation({ ...at, f: "write", value: "v" }, { exitCode: 0, stdout: "", stderr: "" }).op.outcome, "ok");
    const queued = cliOperation(
      { ...at, f: "write", value: "v" },
      { exitCode: 0, stdout: "", stderr: "warning: the cluster KV is unreachable from this member: the change is in the local cache and queued; the agent pushes it" },
    );
    assert.equal(queued.op.outcome, "unknown");
    assert.equal(queued.op.complete, undefined);
    assert.equal(cliOperation({ ...at, f: "write", value: "v" }, { exitCode: 75, stdout: "", stderr: "etcd write: no answer within 5000 ms" }).op.outcome, "unknown");
  });

  it("config get: the value printed, null when not set, nothing learnt from a cached copy or an error", () => {
    assert.deepEqual(cliOperation({ ...at, f: "read" }, { exitCode: 0, stdout: "n3.0.7\n", stderr: "" }).op.value, "n3.0.7");
    const unset = cliOperation({ ...at, f: "read" }, { exitCode: 66, stdout: "", stderr: "Config key raptiformica/chaos/c0 is not set." });
    assert.equal(unset.op.outcome, "ok");
    assert.equal(unset.op.value, null);
    const cached = cliOperation(
      { ...at, f: "read" },
      { exitCode: 0, stdout: "old\n", stderr: "warning: the cluster KV did not answer on this member: this is the member's cached copy of the shared config (…), which may be out of date." },
    );
    assert.equal(cached.op.outcome, "fail");
    assert.equal(cached.cached, true);
    const cachedUnset = cliOperation({ ...at, f: "read" }, { exitCode: 66, stdout: "", stderr: "the cluster KV did not answer on this member: this is the member's cached copy" });
    assert.equal(cachedUnset.op.outcome, "fail");
    assert.equal(cliOperation({ ...at, f: "read" }, { exitCode: 1, stdout: "", stderr: "boom" }).op.outcome, "fail");
  });
});

describe("acknowledged writes present", () => {
  const w = (key: string, outcome: RecordedOp["outcome"]): RecordedOp => ({
    ref: key,
    process: "n0/etcd3",
    key,
    f: "write",
    value: key.split("/").pop()!,
    invoke: 1,
    ...(outcome === "ok" ? { complete: 2 } : {}),
    outcome,
  });

  it("every acknowledged once-key must be there with its value; unknown ones may or may not", () => {
    const rec = [w("chaos/once/a", "ok"), w("chaos/once/b", "ok"), w("chaos/once/c", "unknown"), w("chaos/once/d", "unknown"), w("chaos/r0", "ok")];
    const ok = lostWrites(rec, "chaos/once/", { "chaos/once/a": "a", "chaos/once/b": "b", "chaos/once/c": "c" });
    assert.deepEqual([ok.acknowledged, ok.unknown, ok.lost.length, ok.unexpected.length], [2, 2, 0, 0]);
    const lost = lostWrites(rec, "chaos/once/", { "chaos/once/a": "a", "chaos/once/b": "other" });
    assert.deepEqual(
      lost.lost.map((x) => x.key),
      ["chaos/once/b"],
    );
    assert.deepEqual(lost.unexpected, ["chaos/once/b"]);
    const missing = lostWrites(rec, "chaos/once/", {});
    assert.equal(missing.lost.length, 2);
    assert.deepEqual(lostWrites(rec, "chaos/once/", { "chaos/once/a": "a", "chaos/once/b": "b", "chaos/once/zz": "zz" }).unexpected, ["chaos/once/zz"]);
  });

  it("once-keys are left out of the linearizability check; the rest are numbered", () => {
    const rec = [w("chaos/once/a", "ok"), w("chaos/r0", "ok")];
    const { ops, refs } = toOperations(rec, "chaos/once/");
    assert.equal(ops.length, 1);
    assert.equal(ops[0]!.id, 0);
    assert.equal(refs[0], "chaos/r0");
  });
});

describe("from log to verdict", () => {
  it("a stale read recorded by one member after another's write completed is found", () => {
    const a = [line({ e: "invoke", id: "a.0.0", f: "write", key: "k", value: "a.0.0", t: 1000 }), line({ e: "ok", id: "a.0.0", t: 1005 })].join("\n");
    const b = [
      line({ e: "invoke", id: "b.0.0", f: "write", key: "k", value: "b.0.0", t: 1010 }),
      line({ e: "ok", id: "b.0.0", t: 1020 }),
      line({ e: "invoke", id: "b.0.1", f: "read", key: "k", t: 1030 }),
      line({ e: "ok", id: "b.0.1", t: 1031, value: "a.0.0" }),
    ].join("\n");
    const rec = [...parseWorkloadLog(a, "a/etcd3").ops, ...parseWorkloadLog(b, "b/etcd3").ops];
    const { ops } = toOperations(rec, "chaos/once/");
    const [v] = checkHistory(ops);
    assert.equal(v?.result, "non-linearizable");
    assert.match(v!.explanation!.summary, /b\/etcd3 read → "a.0.0"/);
  });
});

describe("stalls", () => {
  it("the longest gap between answers in each window, worst per kind and member", () => {
    const answers = new Map([
      ["n0", [100, 200, 300, 1300, 1400]],
      ["n1", [100, 150]],
      ["n2", [] as number[]],
    ]);
    const s = stallsByKind(answers, [
      { member: "n0", kind: "kill-etcd", from: 150, to: 1500 },
      { member: "n0", kind: "kill-etcd", from: 1350, to: 1450 },
      { member: "n1", kind: "kill-etcd", from: 150, to: 1500 },
      { member: "n2", kind: "kill-etcd", from: 150, to: 1500 },
      { member: "n0", kind: "partition-minority", from: 0, to: 250 },
    ]);
    assert.equal(s.get("kill-etcd")?.get("n0"), 1000);
    // n1 answered before the window and never again: the whole window.
    assert.equal(s.get("kill-etcd")?.get("n1"), 1350);
    // n2 never answered at all: no figure.
    assert.equal(s.get("kill-etcd")?.has("n2"), false);
    assert.equal(s.get("partition-minority")?.get("n0"), 100);
  });
});
