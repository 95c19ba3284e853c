import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { longestStallMs, parseProbeLog } from "../../bench/lib/stall.ts";

const log = (rows: [string, number, number, number][]) => parseProbeLog(rows.map((r) => r.join(" ")).join("\n"));

describe("longestStallMs (bench/proxy-stall.ts)", () => {
  it("is the largest gap between successful ends inside the window", () => {
    const ops = log([
      ["put", 0, 50, 0],
      ["put", 100, 150, 0],
      ["put", 200, 1200, 1],
      ["put", 1200, 2200, 1],
      ["put", 2200, 2300, 0],
      ["put", 2300, 2400, 0],
    ]);
    // The kill at 160: answering before it, next success at 2300.
    assert.equal(longestStallMs(ops, "put", 160, 2500), 2140);
  });
  it("runs to the window's end when nothing succeeds after the fault", () => {
    const ops = log([
      ["get", 0, 40, 0],
      ["get", 100, 1100, 124],
    ]);
    assert.equal(longestStallMs(ops, "get", 50, 5050), 5000);
  });
  it("counts only the operation kind asked for", () => {
    const ops = log([
      ["put", 0, 10, 0],
      ["get", 20, 30, 0],
      ["get", 500, 510, 0],
      ["put", 900, 910, 0],
    ]);
    assert.equal(longestStallMs(ops, "get", 15, 910), 480);
    assert.equal(longestStallMs(ops, "put", 15, 910), 895);
  });
  it("has no figure without a single success", () => {
    assert.equal(longestStallMs(log([["put", 0, 1000, 1]]), "put", 0, 2000), undefined);
  });
  it("skips lines that are not probe records", () => {
    assert.deepEqual(parseProbeLog("--- start\nput 1 2 0\nnoise\n"), [{ op: "put", start: 1, end: 2, ok: true }]);
  });
});
