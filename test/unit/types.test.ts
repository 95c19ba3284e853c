import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createAvailabilityProbe, listTypes, resolveType } from "../../src/config/types.ts";

describe("type availability", () => {
  const mapping = {
    "raptiformica/compute/zeta/headless/available": "true",
    "raptiformica/compute/alpha/headless/available": "false",
    "raptiformica/compute/beta/headless/start_instance": "x",
    "raptiformica/compute/beta/workstation/available": "exit 0",
    "raptiformica/server/headless/p/bootstrap": "x",
  };

  it("lists types alphabetically", () => {
    assert.deepEqual(listTypes(mapping, "compute"), ["alpha", "beta", "zeta"]);
    assert.deepEqual(listTypes(mapping, "server"), ["headless"]);
  });

  it("defaults to the first available type, alphabetically", async () => {
    const probe = createAvailabilityProbe(tmpdir());
    assert.equal(await resolveType(mapping, "compute", undefined, probe), "beta");
    assert.equal(await resolveType(mapping, "compute", "zeta", probe), "zeta");
    await assert.rejects(resolveType(mapping, "compute", "alpha", probe), /"alpha" is not available on this machine/);
    await assert.rejects(resolveType(mapping, "compute", "gamma", probe), /Unknown compute type "gamma".*Known compute types: alpha, beta, zeta/);
  });

  it("runs each predicate once per process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rf-probe-"));
    try {
      const counter = join(dir, "count");
      const m = {
        "raptiformica/compute/a/headless/available": `echo x >> ${counter}`,
        "raptiformica/compute/b/headless/available": `echo x >> ${counter}`,
      };
      const probe = createAvailabilityProbe(dir);
      await resolveType(m, "compute", undefined, probe);
      await resolveType(m, "compute", "b", probe);
      assert.equal(readFileSync(counter, "utf8"), "x\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
