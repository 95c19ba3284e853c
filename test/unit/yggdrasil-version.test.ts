import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { assertSameMajor, detectYggdrasil } from "../../src/mesh/yggdrasil/version.ts";
import { findYggdrasilBinaries, type Binaries } from "../helpers/netns-pair.ts";

const USAGE_04 = "Usage of yggdrasil:\n  -address\n  -genconf\n  -useconffile string\n  -version\n";
const USAGE_05 = `${USAGE_04}  -exportkey\n  -publickey\n`;

describe("yggdrasil version detection", () => {
  let bins: Binaries;
  const dir = mkdtempSync(join(tmpdir(), "rf-ygg-ver-"));
  before(async () => {
    bins = await findYggdrasilBinaries();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in binary: prints `usage` for -h (on stderr, like Go's flag package) and `version`. */
  function fake(name: string, usage: string, version: string): string {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\nif [ "$1" = -h ]; then printf '%s' '${usage}' >&2; exit 0; fi\nprintf '%s\\n' '${version}'\n`);
    chmodSync(file, 0o755);
    return file;
  }

  it("recognises Debian's 0.4 build, which does not know its version", async (t) => {
    const b = bins.get("0.4");
    if ("skip" in b) return t.skip(b.skip);
    const r = await detectYggdrasil(b.info.binary);
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.equal(r.value.major, "0.4");
    assert.match(r.value.version, /^0\.4\.(x|\d+)$/);
  });

  it("recognises 0.5 and reads its version number", async (t) => {
    const b = bins.get("0.5");
    if ("skip" in b) return t.skip(b.skip);
    const r = await detectYggdrasil(b.info.binary);
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.equal(r.value.major, "0.5");
    assert.match(r.value.version, /^0\.5\.\d+$/);
    assert.equal(r.value.binary, b.info.binary);
  });

  it("uses the flags when the version is unknown, and the number when there is one", async () => {
    const a = await detectYggdrasil(fake("y04", USAGE_04, "Build name: unknown\nBuild version: unknown"));
    assert.deepEqual(a.ok && { major: a.value.major, version: a.value.version }, { major: "0.4", version: "0.4.x" });
    const b = await detectYggdrasil(fake("y05", USAGE_05, "Build name: unknown\nBuild version: unknown"));
    assert.deepEqual(b.ok && { major: b.value.major, version: b.value.version }, { major: "0.5", version: "0.5.x" });
    const c = await detectYggdrasil(fake("y047", USAGE_04, "Build name: yggdrasil\nBuild version: v0.4.7"));
    assert.deepEqual(c.ok && { major: c.value.major, version: c.value.version }, { major: "0.4", version: "0.4.7" });
  });

  it("says what is wrong with a binary it cannot use", async () => {
    const missing = await detectYggdrasil(join(dir, "nope"));
    assert.ok(!missing.ok);
    assert.match(missing.error, /cannot run .*nope.*install Yggdrasil/);
    const other = await detectYggdrasil(fake("other", "usage: other [-x]\n", ""));
    assert.ok(!other.ok);
    assert.match(other.error, /does not look like Yggdrasil/);
    const mixed = await detectYggdrasil(fake("mixed", USAGE_04, "Build version: 0.5.1"));
    assert.ok(!mixed.ok);
    assert.match(mixed.error, /says it is Yggdrasil 0\.5\.1 but its flags are those of 0\.4/);
    const newer = await detectYggdrasil(fake("newer", USAGE_05, "Build version: 0.6.0"));
    assert.ok(!newer.ok);
    assert.match(newer.error, /0\.6\.0; raptiformica supports the 0\.4 and 0\.5 series only/);
  });
});

describe("same yggdrasil major across the cluster", () => {
  it("passes when everyone agrees", () => {
    assert.deepEqual(assertSameMajor("0.5", [{ node: "b", major: "0.5" }]), { ok: true, value: "0.5" });
    assert.deepEqual(assertSameMajor("0.4", []), { ok: true, value: "0.4" });
  });
  it("names the members on the other major and says how to fix it", () => {
    const r = assertSameMajor("0.4", [
      { node: "web-1", major: "0.5" },
      { node: "db-1", major: "0.4" },
      { node: "web-2", major: "0.5" },
    ]);
    assert.ok(!r.ok);
    assert.match(r.error, /runs Yggdrasil 0\.4 but members web-1, web-2 run 0\.5/);
    assert.doesNotMatch(r.error, /db-1/);
    assert.match(r.error, /0\.4 and 0\.5 cannot peer/);
    assert.match(r.error, /Upgrade or downgrade Yggdrasil so that all members run one major version/);
    const one = assertSameMajor("0.5", [{ node: "x", major: "0.4" }]);
    assert.ok(!one.ok && /member x runs 0\.4/.test(one.error));
  });
});
