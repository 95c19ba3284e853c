import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { memberError, memberFailure } from "../../src/ops/cluster/member-cli.ts";
import { HOST_SELF_SCRIPT, decodeAnswer, decodeFullConfig, decodeHostSelf, identityAnswer, membersAnswer, type MembersAnswer } from "../../src/ops/cluster/wire.ts";
import { clusterIdOf, clusterIdOfPem } from "../../src/consensus/cluster-id.ts";
import { EXIT_KEY_NOT_SET, KeyNotSet, UserError } from "../../src/util/errors.ts";
import { jsonText } from "../../src/util/printable.ts";

const WHO = "root@n1.example.org:22";
const KEY = "a".repeat(64);

function answer(stdout: string, exitCode = 0, stderr = ""): { stdout: string; stderr: string; exitCode: number } {
  return { stdout, stderr, exitCode };
}

/** The UserError `fn` throws; fails the test when it throws nothing or something else. */
function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UserError, `a UserError, not ${String(e)}`);
    return e;
  }
  assert.fail("no error was thrown");
}

describe("cluster wire: what a member prints for --json, decoded on the operator", () => {
  it("decodes identity --json, as the member prints it and as an older one did (no version fields)", () => {
    const full = { publicKey: KEY, meshAddress: "200::1", yggdrasilMajor: "0.5", yggdrasilVersion: "0.5.12" };
    assert.deepEqual(decodeAnswer(identityAnswer, answer(`${JSON.stringify(full)}\n`), WHO, "identity --json"), full);
    const old = { publicKey: KEY, meshAddress: "200::1" };
    assert.deepEqual(decodeAnswer(identityAnswer, answer(JSON.stringify(old)), WHO, "identity --json"), old);
  });

  it("refuses an identity whose key is not a Yggdrasil key, naming the member and the field", () => {
    const e = userError(() => decodeAnswer(identityAnswer, answer(JSON.stringify({ publicKey: "zz", meshAddress: "200::1" })), WHO, "identity --json"));
    assert.match(e.message, /root@n1\.example\.org:22 answered `identity --json` with JSON this version of raptiformica cannot read/);
    assert.match(e.message, /publicKey: not a Yggdrasil public key/);
  });

  it("decodes members --json with quorum, and the cached view without it; unknown fields are dropped", () => {
    const withQuorum: MembersAnswer = {
      quorum: true,
      members: [
        { name: "n1", publicKey: KEY, meshAddress: "200::1", host: "10.0.0.1", status: "alive", role: "leader", uptimeSeconds: 12 },
        { name: "n2", publicKey: "b".repeat(64), meshAddress: "200::2", status: "failed" },
      ],
      voterChanges: [{ time: "2024-01-01T00:00:00Z", change: "n2 joined as voter" }],
      problems: [{ kind: "alarm", subject: "n1", message: "etcd raised NOSPACE" }],
    };
    // What the member prints (jsonText: control characters escaped, JSON.parse restores them).
    assert.deepEqual(decodeAnswer(membersAnswer, answer(jsonText({ ...withQuorum, later: "a field from a newer member" })), WHO, "members --json"), withQuorum);
    const cached = { quorum: false, error: "The cluster KV does not answer on this member", members: [{ name: "n1", publicKey: KEY, meshAddress: "200::1", status: "unknown" }] };
    // Without quorum the member exits 1: still an answer.
    assert.deepEqual(decodeAnswer(membersAnswer, answer(jsonText(cached), 1), WHO, "members --json"), cached);
  });

  it("refuses members --json of another shape, naming each wrong field (at most three)", () => {
    const bad = { quorum: "yes", members: [{ name: "n1", publicKey: KEY, meshAddress: "200::1", status: "sleeping", uptimeSeconds: -4 }] };
    const e = userError(() => decodeAnswer(membersAnswer, answer(JSON.stringify(bad)), WHO, "members --json"));
    assert.match(e.message, /^root@n1\.example\.org:22 answered `members --json` with JSON/);
    assert.match(e.message, /quorum: Expected boolean/);
    assert.match(e.message, /members\.0\.status: Invalid enum value/);
    assert.match(e.message, /members\.0\.uptimeSeconds/);
    assert.match(e.message, /`raptiformica slave HOST` brings it to this machine's version/);
    // An answer with no member list at all is refused too (it used to crash the table).
    assert.match(userError(() => decodeAnswer(membersAnswer, answer(JSON.stringify({ quorum: true })), WHO, "members --json")).message, /members: Required/);
  });

  it("quotes the member's stderr and exit code when it printed no JSON at all", () => {
    const e = userError(() => decodeAnswer(membersAnswer, answer("", 127, "sh: 1: /usr/local/bin/raptiformica: not found\n"), WHO, "members --json"));
    assert.equal(e.message, "root@n1.example.org:22 answered `members --json` with something else (exit 127): sh: 1: /usr/local/bin/raptiformica: not found");
    // No stderr: the start of what it printed instead.
    assert.match(userError(() => decodeAnswer(membersAnswer, answer("Welcome to n1!\n"), WHO, "members --json")).message, /with something else \(exit 0\): Welcome to n1!/);
  });

  it("decodes config show --json as a whole config, and refuses one that is not", () => {
    const config = { "raptiformica/meshnet/etcd/max_voters": "3", "raptiformica/server/headless/p/bootstrap": "true", "raptiformica/compute/docker/headless/start_instance": "x", "raptiformica/platform/default/hooks/a/b/command": "true" };
    const full = decodeFullConfig(JSON.stringify(config), WHO);
    assert.deepEqual(full, config);
    assert.match(userError(() => decodeFullConfig("<html>", WHO)).message, /root@n1\.example\.org:22 answered `config show --json` with something that is not JSON\. Nothing was changed here\./);
    const notString = userError(() => decodeFullConfig(JSON.stringify({ ...config, "raptiformica/meshnet/etcd/max_voters": 3 }), WHO));
    assert.match(notString.message, /The config root@n1\.example\.org:22 reported is not usable: the value of raptiformica\/meshnet\/etcd\/max_voters is not a string/);
    assert.match(userError(() => decodeFullConfig("[]", WHO)).message, /not usable: it is not a JSON object/);
    assert.match(userError(() => decodeFullConfig("{}", WHO)).message, /not usable: it is empty/);
  });
});

describe("a member's own error message, passed on by the operator", () => {
  it("splits off the warnings before the member's error paragraph and drops its prefix", () => {
    const stderr = "warning: the cluster KV did not answer on this member\nraptiformica: Cannot set config key a b: it has white space.\n";
    assert.deepEqual(memberError(stderr), { before: "warning: the cluster KV did not answer on this member\n", message: "Cannot set config key a b: it has white space." });
  });

  it("keeps a multi-line error whole, and text without the prefix as it is", () => {
    assert.deepEqual(memberError("raptiformica: No cluster member could be reached over SSH:\n  h1: refused\n"), { before: "", message: "No cluster member could be reached over SSH:\n  h1: refused" });
    assert.deepEqual(memberError("Segmentation fault\n"), { before: "", message: "Segmentation fault" });
    // The prefix inside a line is not the start of the member's error.
    assert.deepEqual(memberError("see raptiformica: docs\n"), { before: "", message: "see raptiformica: docs" });
  });

  it("a member's `not set` is told by its exit code (66), never by its words", () => {
    const argv = ["config", "delete", "--recursive", "--", `raptiformica/meshnet/neighbours/${KEY}`];
    const key = `raptiformica/meshnet/neighbours/${KEY}`;
    const notSet = memberFailure({ exitCode: EXIT_KEY_NOT_SET, stderr: `raptiformica: Config key ${key} is not set; nothing was deleted.\n` }, argv, key);
    assert.ok(notSet instanceof KeyNotSet);
    assert.equal(notSet.key, key);
    assert.equal(notSet.exitCode, 66);
    assert.equal(notSet.message, `Config key ${key} is not set; nothing was deleted.`);
    // Any other failure stays one, whatever it says (an older member, a refusal quoting "not set").
    const refused = memberFailure({ exitCode: 1, stderr: "raptiformica: Deleting it was refused: raptiformica/meshnet/etcd/election_ms is not set below 5 heartbeats.\n" }, argv, key);
    assert.ok(!(refused instanceof KeyNotSet));
    assert.equal(refused.exitCode, 1);
    // Exit 66 from a command about no key is passed on as it is, with a message when it gave none.
    const bare = memberFailure({ exitCode: EXIT_KEY_NOT_SET, stderr: "" }, ["config", "show", "--json"]);
    assert.ok(!(bare instanceof KeyNotSet));
    assert.equal(bare.exitCode, 66);
    assert.match(bare.message, /`raptiformica config` exited 66 on a member without saying why/);
  });
});

describe("what a host says about itself (slave, join): one reader", () => {
  const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  const CA_KEY = "raptiformica/meshnet/etcd/ca_cert";
  const usable = { "raptiformica/server/s/x": "1", "raptiformica/compute/c/x": "1", "raptiformica/platform/p/x": "1" };

  /** Runs HOST_SELF_SCRIPT, as slave and join do over SSH, on a cache dir laid out here. */
  function said(files: { ca?: string; config?: string }): ReturnType<typeof decodeHostSelf> {
    const dir = mkdtempSync(join(tmpdir(), "rf-host-self-"));
    try {
      if (files.ca !== undefined) {
        mkdirSync(join(dir, "node", "etcd", "tls"), { recursive: true });
        writeFileSync(join(dir, "node", "etcd", "tls", "ca.crt"), files.ca);
      }
      if (files.config !== undefined) writeFileSync(join(dir, "mutable_config.json"), files.config);
      const r = spawnSync("sh", ["-c", HOST_SELF_SCRIPT, "sh", dir], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return decodeHostSelf(r.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("a new host says nothing", () => {
    assert.deepEqual(said({}), { hasConfig: false });
  });

  it("its node's CA names its cluster, even with its config moved away or unusable", () => {
    const id = clusterIdOfPem(pem("AAEC"));
    assert.deepEqual(said({ ca: pem("AAEC") }), { hasConfig: false, clusterId: id });
    assert.deepEqual(said({ ca: pem("AAEC"), config: "{ half" }), { hasConfig: true, clusterId: id });
    // Its CA file wins over the CA its config names (the config may be a copy from elsewhere).
    const config = { ...usable, [CA_KEY]: pem("AAED") };
    assert.deepEqual(said({ ca: pem("AAEC"), config: JSON.stringify(config) }), { hasConfig: true, mapping: config, clusterId: id });
  });

  it("without a CA file, its config's CA names the cluster; a config of no cluster is not a member's", () => {
    const config = { ...usable, [CA_KEY]: pem("AAED") };
    assert.deepEqual(said({ config: JSON.stringify(config) }), { hasConfig: true, mapping: config, clusterId: clusterIdOf(config) });
    assert.deepEqual(said({ config: JSON.stringify(usable) }), { hasConfig: false, mapping: usable });
  });

  it("what cannot be read names no cluster: a CA file without a certificate, a config that is not a usable one", () => {
    assert.deepEqual(said({ ca: "" }), { hasConfig: false });
    assert.deepEqual(said({ ca: "garbage\n" }), { hasConfig: false });
    // JSON, but no config (required sections missing): kept (never overwritten), its CA not believed.
    assert.deepEqual(said({ config: JSON.stringify({ [CA_KEY]: pem("AAED") }) }), { hasConfig: true });
    assert.deepEqual(said({ config: "" }), { hasConfig: true });
  });
});
