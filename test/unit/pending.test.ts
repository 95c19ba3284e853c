import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PendingChanges, applyOps, diffOps } from "../../src/config/pending.ts";

describe("pending config changes", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-pending-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("records sets and deletes, and replays them in order", () => {
    const before = { "raptiformica/a": "1", "raptiformica/b": "2" };
    const afterChange = { "raptiformica/a": "1", "raptiformica/c": "3" };
    const ops = diffOps(before, afterChange, 7);
    assert.deepEqual(ops, [
      { key: "raptiformica/c", value: "3", at: 7 },
      { key: "raptiformica/b", value: null, at: 7 },
    ]);
    assert.deepEqual(applyOps({ "raptiformica/b": "x", "raptiformica/z": "9" }, ops), { "raptiformica/c": "3", "raptiformica/z": "9" });
  });

  it("keeps changes appended during a replay, and restores a failed replay in front of them", () => {
    const p = new PendingChanges(join(dir, "pending.jsonl"));
    p.append([{ key: "raptiformica/a", value: "1", at: 1 }]);
    assert.equal(statSync(p.path).mode & 0o777, 0o600);
    const taken = p.take();
    assert.ok(taken);
    assert.equal(taken.ops.length, 1);
    p.append([{ key: "raptiformica/b", value: "2", at: 2 }]);
    taken.restore();
    const again = p.take();
    assert.deepEqual(again?.ops.map((o) => o.key), ["raptiformica/a", "raptiformica/b"]);
    again?.done();
    assert.equal(p.take(), undefined);
    assert.throws(() => readFileSync(p.path));
  });
});
