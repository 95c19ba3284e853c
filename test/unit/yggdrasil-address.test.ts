import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { addressForKey, formatIPv6, subnetForKey } from "../../src/mesh/yggdrasil/address.ts";
import type { Major } from "../../src/mesh/yggdrasil/version.ts";
import { run } from "../../src/util/exec.ts";
import { findYggdrasilBinaries, type Binaries } from "../helpers/netns-pair.ts";

describe("yggdrasil address derivation", () => {
  it("matches addresses yggdrasil printed for known keys", () => {
    // Printed by yggdrasil 0.4.7 and 0.5.12 for these keys.
    assert.equal(addressForKey("7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c"), "201:9e3:2644:fad9:e9d9:822a:fb67:ba87");
    assert.equal(subnetForKey("7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c"), "301:9e3:2644:fad9::/64");
    assert.equal(addressForKey("116f4e064f7e9fbffaeca0c334c2cbb6bf3e2f2f83446f2520d2d84dfeb3bd55"), "203:e90b:1f9b:816:400:5135:f3cc:b3d3");
    assert.equal(subnetForKey("116F4E064F7E9FBFFAECA0C334C2CBB6BF3E2F2F83446F2520D2D84DFEB3BD55"), "303:e90b:1f9b:816::/64");
  });

  it("counts the leading ones of the inverted key", () => {
    // Key 0x00 0x0f...: inverted 0xff 0xf0... = 12 ones, then the 0 is dropped.
    const key = "000f" + "ff".repeat(30);
    assert.equal(addressForKey(key), "20c::");
    const all0 = "00".repeat(32);
    assert.equal(addressForKey(all0), "200::"); // 256 ones wrap to 0 in Go's byte counter
  });

  it("rejects things that are not public keys", () => {
    assert.throws(() => addressForKey("abc"), /64 hex/);
    assert.throws(() => addressForKey("zz".repeat(32)), /64 hex/);
  });

  it("formats IPv6 like Go's net.IP.String", () => {
    const ip = (...g: number[]) => {
      const b = new Uint8Array(16);
      g.forEach((v, i) => {
        b[2 * i] = v >> 8;
        b[2 * i + 1] = v & 0xff;
      });
      return formatIPv6(b);
    };
    assert.equal(ip(0, 0, 0, 0, 0, 0, 0, 0), "::");
    assert.equal(ip(0, 0, 0, 0, 0, 0, 0, 1), "::1");
    assert.equal(ip(1, 0, 0, 0, 0, 0, 0, 0), "1::");
    assert.equal(ip(0x200, 0, 1, 2, 3, 4, 5, 6), "200:0:1:2:3:4:5:6"); // a single zero group stays
    assert.equal(ip(1, 0, 0, 2, 0, 0, 0, 3), "1:0:0:2::3"); // the longest run wins
    assert.equal(ip(1, 0, 0, 2, 0, 0, 3, 4), "1::2:0:0:3:4"); // the first of equal runs wins
    assert.equal(ip(0xabcd, 0x0ef, 0, 0, 0, 0, 0, 0), "abcd:ef::");
  });
});

describe("yggdrasil address derivation against the real binaries", () => {
  let bins: Binaries;
  const dir = mkdtempSync(join(tmpdir(), "rf-ygg-addr-"));
  before(async () => {
    bins = await findYggdrasilBinaries();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const major of ["0.4", "0.5"] as Major[]) {
    it(`gives the address and subnet yggdrasil ${major} derives, for several keys`, async (t) => {
      const b = bins.get(major);
      if ("skip" in b) return t.skip(b.skip);
      for (let i = 0; i < 6; i++) {
        const gen = await run(b.info.binary, ["-genconf", "-json"], { timeoutMs: 15_000 });
        assert.equal(gen.exitCode, 0, gen.stderr);
        const conf = JSON.parse(gen.stdout) as { PrivateKey: string; PublicKey?: string };
        const file = join(dir, `${major}-${i}.json`);
        writeFileSync(file, gen.stdout);
        const address = await run(b.info.binary, ["-useconffile", file, "-address"], { timeoutMs: 15_000 });
        const subnet = await run(b.info.binary, ["-useconffile", file, "-subnet"], { timeoutMs: 15_000 });
        const publicKey = conf.PrivateKey.slice(64);
        if (major === "0.4") assert.equal(conf.PublicKey, publicKey, "0.4: PublicKey is the private key's second half");
        assert.equal(addressForKey(publicKey), address.stdout.trim(), `key ${publicKey}`);
        assert.equal(subnetForKey(publicKey), subnet.stdout.trim(), `key ${publicKey}`);
      }
    });
  }
});
