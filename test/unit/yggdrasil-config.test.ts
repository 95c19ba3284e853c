import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { configHash, peerUri, renderConfig, type RenderOptions } from "../../src/mesh/yggdrasil/config.ts";
import { writeConfigFile } from "../../src/mesh/yggdrasil/config-file.ts";
import { MESH_PASSWORD_KEY, meshPassword, meshPasswordProblem, newMeshPassword } from "../../src/mesh/yggdrasil/password.ts";
import { settingProblems } from "../../src/consensus/settings.ts";
import type { Major } from "../../src/mesh/yggdrasil/version.ts";
import { run } from "../../src/util/exec.ts";
import { findYggdrasilBinaries, type Binaries } from "../helpers/netns-pair.ts";

// A real key pair (seed + public half) and two other public keys.
const PRIV = "2d3306c9ea6fcf73179d378137998908e5c48ec848131b61516555318a9903ee7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c";
const PUB = PRIV.slice(64);
const K1 = "116f4e064f7e9fbffaeca0c334c2cbb6bf3e2f2f83446f2520d2d84dfeb3bd55";
const K2 = "d998e513a2c3140a6bae6c32812026d807d112e7a9aab9455e9e13db60dbbd93";

function opts(major: Major, over: Partial<RenderOptions> = {}): RenderOptions {
  return {
    major,
    privateKey: PRIV,
    publicKey: PUB,
    listenPort: 4863,
    peers: [
      { host: "2001:db8::7", port: 4863, publicKey: K2 },
      { host: "198.18.0.1", port: 4863, publicKey: K1 },
    ],
    allowedPublicKeys: [K2, K1, K1],
    adminSocket: "/run/raptiformica/ygg.sock",
    ...over,
  };
}

describe("yggdrasil peer URIs", () => {
  it("pins the key and brackets IPv6 hosts", () => {
    assert.equal(peerUri({ host: "198.18.0.1", port: 4863, publicKey: K1 }), `tcp://198.18.0.1:4863?key=${K1}`);
    assert.equal(peerUri({ host: "2001:DB8::7", port: 1, publicKey: K1.toUpperCase() }), `tcp://[2001:db8::7]:1?key=${K1}`);
    assert.equal(peerUri({ host: "[2001:db8::7]", port: 1, publicKey: K1 }), `tcp://[2001:db8::7]:1?key=${K1}`);
    assert.equal(peerUri({ host: "fe80::1%eth0", port: 1, publicKey: K1 }), `tcp://[fe80::1%25eth0]:1?key=${K1}`);
    assert.equal(peerUri({ host: "node-1.example.org", port: 1, publicKey: K1 }), `tcp://node-1.example.org:1?key=${K1}`);
  });
  it("refuses hosts, ports and keys that would make another URI", () => {
    assert.throws(() => peerUri({ host: "a/b", port: 1, publicKey: K1 }), /is not a hostname or IP address/);
    assert.throws(() => peerUri({ host: "a?key=x", port: 1, publicKey: K1 }), /is not a hostname or IP address/);
    assert.throws(() => peerUri({ host: "", port: 1, publicKey: K1 }), /is not a hostname or IP address/);
    assert.throws(() => peerUri({ host: "h", port: 0, publicKey: K1 }), /port/);
    assert.throws(() => peerUri({ host: "h", port: 65536, publicKey: K1 }), /port/);
    assert.throws(() => peerUri({ host: "h", port: 1, publicKey: "abc" }), /public key/);
  });
});

describe("the mesh password (0.5)", () => {
  const P = "abcdefghijklmnopqrstuvwxyz_-0123";
  it("goes on the listener and on every peer URI, after the pinned key", () => {
    const c = JSON.parse(renderConfig(opts("0.5", { password: P }))) as { Listen: string[]; Peers: string[] };
    assert.deepEqual(c.Listen, [`tcp://[::]:4863?password=${P}`]);
    assert.deepEqual(c.Peers, [`tcp://198.18.0.1:4863?key=${K1}&password=${P}`, `tcp://[2001:db8::7]:4863?key=${K2}&password=${P}`]);
    assert.equal(peerUri({ host: "198.18.0.1", port: 4863, publicKey: K1, password: P }), `tcp://198.18.0.1:4863?key=${K1}&password=${P}`);
  });

  it("is refused when it could not go into a URI or is too long for yggdrasil, and on 0.4 (which has none)", () => {
    assert.throws(() => peerUri({ host: "198.18.0.1", port: 4863, publicKey: K1, password: "a&key=evil-0123456789" }), /password/);
    assert.throws(() => renderConfig(opts("0.5", { password: "x".repeat(65) })), /password/);
    assert.throws(() => renderConfig(opts("0.5", { password: "short" })), /password/);
    assert.throws(() => renderConfig(opts("0.4", { password: P })), /0\.4 has no link password/);
  });

  it("config set takes only a usable one (the agent's rule), and a new cluster's is random and usable", () => {
    assert.deepEqual(settingProblems({ [MESH_PASSWORD_KEY]: P }), []);
    const bad = settingProblems({ [MESH_PASSWORD_KEY]: "has spaces in it, see" });
    assert.equal(bad.length, 1);
    assert.equal(bad[0]?.key, MESH_PASSWORD_KEY);
    const a = newMeshPassword();
    assert.equal(meshPasswordProblem(a), undefined);
    assert.notEqual(a, newMeshPassword());
    assert.equal(meshPassword({ [MESH_PASSWORD_KEY]: "bad one" }), undefined);
  });
});

describe("yggdrasil config rendering", () => {
  it("renders the 0.4 layout: both keys, closed mesh, no multicast, unix admin socket", () => {
    const c = JSON.parse(renderConfig(opts("0.4"))) as Record<string, unknown>;
    assert.equal(c["PrivateKey"], PRIV);
    assert.equal(c["PublicKey"], PUB);
    assert.deepEqual(c["Peers"], [`tcp://198.18.0.1:4863?key=${K1}`, `tcp://[2001:db8::7]:4863?key=${K2}`]);
    assert.deepEqual(c["Listen"], ["tcp://[::]:4863"]);
    assert.deepEqual(c["AllowedPublicKeys"], [PUB, K1, K2].sort());
    assert.deepEqual(c["MulticastInterfaces"], []);
    assert.equal(c["AdminListen"], "unix:///run/raptiformica/ygg.sock");
    assert.equal(c["NodeInfoPrivacy"], true);
    assert.equal(c["IfName"], "auto");
    assert.equal(c["IfMTU"], 65535);
  });

  it("renders the 0.5 layout without PublicKey", () => {
    const c = JSON.parse(renderConfig(opts("0.5", { ifName: "ygg0", mtu: 1500 }))) as Record<string, unknown>;
    assert.equal(c["PrivateKey"], PRIV);
    assert.equal("PublicKey" in c, false);
    assert.equal(c["IfName"], "ygg0");
    assert.equal(c["IfMTU"], 1500);
    assert.deepEqual(c["AllowedPublicKeys"], [PUB, K1, K2].sort());
  });

  it("keeps the allow list closed even for a cluster of one", () => {
    const c = JSON.parse(renderConfig(opts("0.5", { allowedPublicKeys: [], peers: [] }))) as Record<string, unknown>;
    assert.deepEqual(c["AllowedPublicKeys"], [PUB]);
  });

  it("is deterministic: order and duplicates of the inputs do not change the hash", () => {
    const a = renderConfig(opts("0.5"));
    const b = renderConfig(opts("0.5", { peers: [...opts("0.5").peers].reverse().concat(opts("0.5").peers), allowedPublicKeys: [K1, K2] }));
    assert.equal(a, b);
    assert.equal(configHash(a), configHash(b));
    assert.match(configHash(a), /^[0-9a-f]{64}$/);
    assert.notEqual(configHash(a), configHash(renderConfig(opts("0.5", { listenPort: 4864 }))));
  });

  it("refuses inconsistent input", () => {
    assert.throws(() => renderConfig(opts("0.5", { publicKey: K1 })), /public half/);
    assert.throws(() => renderConfig(opts("0.5", { privateKey: "ab" })), /128 hex/);
    assert.throws(() => renderConfig(opts("0.5", { adminSocket: "ygg.sock" })), /absolute/);
    assert.throws(() => renderConfig(opts("0.5", { ifName: "x".repeat(16) })), /interface name/);
    assert.throws(() => renderConfig(opts("0.5", { allowedPublicKeys: ["nope"] })), /public key/);
    assert.throws(() => renderConfig(opts("0.5", { mtu: 100 })), /mtu/);
  });
});

describe("yggdrasil config file", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-ygg-conf-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is written 0600 and only when it changed", async () => {
    const file = join(dir, "y", "yggdrasil.conf");
    const text = renderConfig(opts("0.5"));
    assert.deepEqual(await writeConfigFile(file, text), { changed: true, hash: configHash(text) });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "y")).mode & 0o777, 0o700);
    assert.equal(readFileSync(file, "utf8"), text);
    assert.equal((await writeConfigFile(file, text)).changed, false);
    const other = renderConfig(opts("0.5", { listenPort: 1 }));
    assert.equal((await writeConfigFile(file, other)).changed, true);
    assert.equal(readFileSync(file, "utf8"), other);
  });
});

describe("yggdrasil accepts the rendered config", () => {
  let bins: Binaries;
  const dir = mkdtempSync(join(tmpdir(), "rf-ygg-norm-"));
  before(async () => {
    bins = await findYggdrasilBinaries();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const major of ["0.4", "0.5"] as Major[]) {
    it(`yggdrasil ${major} -normaliseconf keeps what we set, and derives our address`, async (t) => {
      const b = bins.get(major);
      if ("skip" in b) return t.skip(b.skip);
      const file = join(dir, `${major}.conf`);
      writeFileSync(file, renderConfig(opts(major, { ifName: "ygg0" })));
      const norm = await run(b.info.binary, ["-useconffile", file, "-normaliseconf", "-json"], { timeoutMs: 15_000 });
      assert.equal(norm.exitCode, 0, norm.stderr);
      const c = JSON.parse(norm.stdout) as Record<string, unknown>;
      // Every field we write is one this major knows (0.5.12 leaves AdminListen out of its
      // -normaliseconf output although it uses it: the e2e test talks to that socket).
      const rendered = Object.keys(JSON.parse(readFileSync(file, "utf8")) as object);
      assert.deepEqual(rendered.filter((k) => !(k in c)), major === "0.5" ? ["AdminListen"] : []);
      assert.equal(c["PrivateKey"], PRIV);
      if (major === "0.4") {
        assert.equal(c["PublicKey"], PUB);
        assert.equal(c["AdminListen"], "unix:///run/raptiformica/ygg.sock");
      }
      assert.deepEqual(c["Peers"], [`tcp://198.18.0.1:4863?key=${K1}`, `tcp://[2001:db8::7]:4863?key=${K2}`]);
      assert.deepEqual(c["Listen"], ["tcp://[::]:4863"]);
      assert.deepEqual(c["AllowedPublicKeys"], [PUB, K1, K2].sort());
      assert.deepEqual(c["MulticastInterfaces"], []);
      assert.equal(c["NodeInfoPrivacy"], true);
      assert.equal(c["IfName"], "ygg0");
      const address = await run(b.info.binary, ["-useconffile", file, "-address"], { timeoutMs: 15_000 });
      assert.equal(address.stdout.trim(), addressForKey(PUB));
    });
  }
});
