import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { yggdrasil05 } from "../helpers/netns-pair.ts";

/*
 * A member moved from Yggdrasil 0.4 to 0.5 keeps its key (node/yggdrasil/private.key), and so
 * its mesh address: both majors derive the same address from the same ed25519 key, and so does
 * raptiformica's own addressForKey. Checked with the real binaries on fresh keys.
 */

function run(bin: string, args: string[], input?: string): string {
  const r = spawnSync(bin, args, { encoding: "utf8", input, timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

function binaries(): { y04?: string; y05?: string; why?: string } {
  const sys = spawnSync("sh", ["-c", "command -v yggdrasil"], { encoding: "utf8" }).stdout.trim();
  if (!sys) return { why: "needs yggdrasil" };
  const usage = spawnSync(sys, ["-h"], { encoding: "utf8" });
  if (/-publickey/.test(`${usage.stdout}${usage.stderr}`)) return { why: "the system's yggdrasil is 0.5: no 0.4 binary to compare with" };
  const y05 = yggdrasil05();
  if ("skip" in y05) return { why: y05.skip };
  return { y04: sys, y05: y05.bin };
}

describe("Yggdrasil 0.4 and 0.5 give one key the same mesh address", () => {
  it("for keys made by 0.4, as a member being migrated has", (t) => {
    const { y04, y05, why } = binaries();
    if (!y04 || !y05) return t.skip(why);
    for (let i = 0; i < 3; i++) {
      const conf04 = JSON.parse(run(y04, ["-genconf", "-json"])) as { PrivateKey: string; PublicKey: string };
      const a04 = run(y04, ["-useconf", "-address"], JSON.stringify(conf04));
      // 0.5 reads the same PrivateKey (hex of the 64-byte ed25519 key) and derives the rest.
      const conf05 = JSON.stringify({ PrivateKey: conf04.PrivateKey });
      const a05 = run(y05, ["-useconf", "-address"], conf05);
      const pk05 = run(y05, ["-useconf", "-publickey"], conf05);
      assert.equal(pk05, conf04.PublicKey, "0.5 derives the public key 0.4 recorded");
      assert.equal(a05, a04, `key ${conf04.PublicKey}: 0.4 says ${a04}, 0.5 says ${a05}`);
      assert.equal(addressForKey(conf04.PublicKey), a04, "raptiformica's own derivation");
    }
  });
});
