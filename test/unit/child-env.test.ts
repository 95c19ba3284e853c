import { strict as assert } from "node:assert";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, describe, it } from "node:test";
import { childEnv } from "../../src/config/child-env.ts";
import { createAvailabilityProbe } from "../../src/config/types.ts";

describe("childEnv", () => {
  const installDir = mkdtempSync(join(tmpdir(), "rf-child-env-"));
  after(() => rmSync(installDir, { recursive: true, force: true }));
  const place = { installDir, cacheDir: "/srv/rf cache" };

  it("names this install and cache dir, with the install's bin/ first on PATH", () => {
    const env = childEnv(place);
    assert.equal(env["RAPTIFORMICA_HOME"], installDir);
    assert.equal(env["RAPTIFORMICA_CACHE_DIR"], "/srv/rf cache");
    assert.equal(env["PATH"]?.split(delimiter)[0], join(installDir, "bin"));
    assert.equal(env["HOME"], process.env["HOME"], "the rest of our environment is passed on");
  });

  it("lays `extra` over it", () => {
    const env = childEnv(place, { RAPTIFORMICA_HOOK: "after_mesh", RAPTIFORMICA_CACHE_DIR: "/other" });
    assert.equal(env["RAPTIFORMICA_HOOK"], "after_mesh");
    assert.equal(env["RAPTIFORMICA_CACHE_DIR"], "/other");
  });

  it("lets a predicate that calls raptiformica reach this very install", async () => {
    mkdirSync(join(installDir, "bin"));
    writeFileSync(join(installDir, "bin", "raptiformica"), "#!/bin/sh\necho \"$RAPTIFORMICA_CACHE_DIR\"\n");
    chmodSync(join(installDir, "bin", "raptiformica"), 0o755);
    const probe = createAvailabilityProbe(installDir, childEnv(place));
    assert.equal(await probe.check('[ "$(raptiformica)" = "/srv/rf cache" ]'), true);
  });
});
