import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { IDENTITY_FILE, loadOrCreateIdentity, publicKeyFromSeed } from "../../src/mesh/yggdrasil/identity.ts";
import type { Major } from "../../src/mesh/yggdrasil/version.ts";
import { run } from "../../src/util/exec.ts";
import { UserError } from "../../src/util/errors.ts";
import { findYggdrasilBinaries, type Binaries } from "../helpers/netns-pair.ts";

const PRIV = "2d3306c9ea6fcf73179d378137998908e5c48ec848131b61516555318a9903ee7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c";

describe("yggdrasil identity", () => {
  let bins: Binaries;
  const root = mkdtempSync(join(tmpdir(), "rf-ygg-id-"));
  before(async () => {
    bins = await findYggdrasilBinaries();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("derives the public key from the seed like Go's ed25519", () => {
    assert.equal(publicKeyFromSeed(PRIV), PRIV.slice(64));
  });

  for (const major of ["0.4", "0.5"] as Major[]) {
    it(`is created once with yggdrasil ${major}, 0600 in a 0700 dir, and the same after a restart`, async (t) => {
      const b = bins.get(major);
      if ("skip" in b) return t.skip(b.skip);
      const dir = join(root, `node-${major}`, "yggdrasil");
      const id = await loadOrCreateIdentity(dir, b.info);
      assert.match(id.privateKey, /^[0-9a-f]{128}$/);
      assert.equal(id.publicKey, id.privateKey.slice(64));
      assert.equal(id.address, addressForKey(id.publicKey));
      const file = join(dir, IDENTITY_FILE);
      assert.equal(readFileSync(file, "utf8"), `${id.privateKey}\n`);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.deepEqual(readdirSync(dir), [IDENTITY_FILE], "no temp files left behind");

      // yggdrasil itself, given this key, lands on the same address.
      const conf = major === "0.4" ? { PublicKey: id.publicKey, PrivateKey: id.privateKey } : { PrivateKey: id.privateKey };
      const addr = await run(b.info.binary, ["-useconf", "-address"], { input: JSON.stringify(conf), timeoutMs: 15_000 });
      assert.equal(addr.stdout.trim(), id.address);

      assert.deepEqual(await loadOrCreateIdentity(dir, b.info), id);
    });
  }

  it("gives concurrent creators one and the same key", async (t) => {
    const b = bins.get("0.4");
    const b5 = bins.get("0.5");
    const info = "info" in b ? b.info : "info" in b5 ? b5.info : undefined;
    if (!info) return t.skip("no yggdrasil binary");
    const dir = join(root, "race");
    const ids = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateIdentity(dir, info)));
    for (const id of ids) assert.deepEqual(id, ids[0]);
    assert.deepEqual(readdirSync(dir), [IDENTITY_FILE]);
  });

  it("reads a key written by hand (uppercase, no newline) and tightens a loose mode", async () => {
    const dir = join(root, "hand");
    const info = { binary: "/nonexistent/yggdrasil", major: "0.5" as const, version: "0.5.x" };
    await loadOrCreateIdentity(dir, info).catch(() => undefined); // creates the dir, fails to generate
    writeFileSync(join(dir, IDENTITY_FILE), PRIV.toUpperCase());
    chmodSync(join(dir, IDENTITY_FILE), 0o644);
    const id = await loadOrCreateIdentity(dir, info);
    assert.deepEqual(id, { privateKey: PRIV, publicKey: PRIV.slice(64), address: "201:9e3:2644:fad9:e9d9:822a:fb67:ba87" });
    assert.equal(statSync(join(dir, IDENTITY_FILE)).mode & 0o777, 0o600);
  });

  const corrupt: [string, string, RegExp][] = [
    ["empty", "", /it is empty/],
    ["truncated", PRIV.slice(0, 100), /128 hexadecimal characters \(found 100/],
    ["not hex", "x".repeat(128), /128 hexadecimal characters/],
    ["halves that do not belong together", PRIV.slice(0, 64) + "00".repeat(32), /public half does not match its seed/],
  ];
  for (const [what, content, problem] of corrupt) {
    it(`refuses a corrupt key file (${what}), naming it, and leaves it as it is`, async () => {
      const dir = join(root, `corrupt-${what.replace(/\W+/g, "-")}`);
      const file = join(dir, IDENTITY_FILE);
      await loadOrCreateIdentity(dir, { binary: "/nonexistent/yggdrasil", major: "0.4", version: "0.4.x" }).catch(() => undefined);
      writeFileSync(file, content, { mode: 0o600 });
      await assert.rejects(loadOrCreateIdentity(dir, { binary: "yggdrasil", major: "0.4", version: "0.4.x" }), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, problem);
        assert.match(e.message, /will not replace it/);
        assert.match(e.message, /Restore the file from a backup, or delete it/);
        return true;
      });
      assert.equal(readFileSync(file, "utf8"), content);
    });
  }
});
