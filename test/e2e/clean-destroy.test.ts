import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, beforeEach, describe, it } from "node:test";
import { sandbox, type Sandbox } from "../helpers/cli.ts";

/*
 * What `clean` and `destroy` may delete: only in a dir that is raptiformica's (its marker, or
 * state only raptiformica writes), only raptiformica's entries and only of its type, never what
 * a running instance uses, and never the identities that members trust unless asked. The built
 * CLI with a throwaway $HOME (never the real one); no instance is really started: instance dirs
 * are made by hand, with a compute type whose commands only record that they ran.
 */

const UUID = "0123456789abcdef0123456789abcdef";

describe("clean and destroy delete only what is raptiformica's", () => {
  let sb: Sandbox;
  beforeEach(() => {
    sb?.cleanup();
    sb = sandbox();
  });
  after(() => sb.cleanup());

  /** A cache made by raptiformica, with the operator's identities and one instance dir of `compute`. */
  async function operatorCache(compute: string): Promise<string> {
    const r = await sb.run(["config", "set", "test/some/key", "v"]);
    assert.equal(r.code, 0, r.stderr);
    mkdirSync(join(sb.cache, "ssh"), { recursive: true });
    writeFileSync(join(sb.cache, "ssh", "id_ed25519"), "operator key");
    writeFileSync(join(sb.cache, "known_hosts"), "[198.18.250.2]:22 ssh-ed25519 AAAA\n");
    writeFileSync(join(sb.cache, "known_hosts.old"), "older\n");
    const inst = join(sb.cache, "var", "machines", compute, "headless", UUID);
    mkdirSync(inst, { recursive: true });
    writeFileSync(join(inst, "root-of-the-instance"), "bind-mounted as /root\n");
    return inst;
  }

  it("clean refuses while instances started from here exist, naming how many and destroy/prune; nothing is changed", async () => {
    const inst = await operatorCache("qafake");
    const before = readdirSync(sb.cache).sort();
    const r = await sb.run(["clean"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 instance\(s\) started from this machine still exist/);
    assert.ok(r.stderr.includes(UUID), r.stderr);
    assert.match(r.stderr, /raptiformica destroy/);
    assert.match(r.stderr, /raptiformica prune/);
    assert.ok(existsSync(join(inst, "root-of-the-instance")), "the instance's files survive");
    assert.deepEqual(readdirSync(sb.cache).sort(), before, "nothing in the cache dir was deleted");
  });

  it("destroy tears the instances down and keeps ssh/ and known_hosts; clean then keeps them too unless --purge-identity", async () => {
    const mod = join(sb.home, "qafake");
    mkdirSync(mod);
    const ran = join(sb.home, "cleaned-up");
    writeFileSync(
      join(mod, "raptiformica.json"),
      JSON.stringify({ raptiformica_api_version: "0.1", compute: { qafake: { headless: { start_instance: "false", get_hostname: "echo h", get_port: "echo 22", clean_up_instance_command: `basename "$PWD" >> '${ran}'` } } } }),
    );
    let r = await sb.run(["install", mod]);
    assert.equal(r.code, 0, r.stderr);
    const inst = await operatorCache("qafake");

    r = await sb.run(["destroy"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /destroyed 1 instance\(s\)/);
    assert.equal(readFileSync(ran, "utf8").trim(), UUID, "its clean_up_instance_command ran in its dir");
    assert.ok(!existsSync(inst));
    assert.ok(!existsSync(join(sb.cache, "mutable_config.json")), "the cluster is forgotten");
    assert.equal(readFileSync(join(sb.cache, "ssh", "id_ed25519"), "utf8"), "operator key", "destroy keeps the SSH key members trust");
    assert.ok(existsSync(join(sb.cache, "known_hosts")), "destroy keeps the pinned host keys");

    r = await sb.run(["clean"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kept the identities: ssh, known_hosts/);
    assert.deepEqual(readdirSync(sb.cache).sort(), [".raptiformica-managed", "known_hosts", "known_hosts.old", "ssh"]);
    assert.equal(readFileSync(join(sb.cache, "ssh", "id_ed25519"), "utf8"), "operator key");

    r = await sb.run(["clean", "--purge-identity"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(sb.cache), "with --purge-identity everything goes, and the dir with it");
  });

  it("destroy says which instance dirs no compute type in the config knows, and clean still refuses over them", async () => {
    const inst = await operatorCache("qafake");
    let r = await sb.run(["destroy"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /1 instance dir\(s\) remain because no compute type in the config knows them: qafake\/headless\/0123/);
    assert.ok(existsSync(inst));
    r = await sb.run(["clean"]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(existsSync(join(inst, "root-of-the-instance")));
  });

  it("clean and destroy refuse a dir that is not raptiformica's, naming it and why; nothing is deleted", async () => {
    // The look-alike: every name is one raptiformica uses, none of it is raptiformica's.
    const d = mkdtempSync(join(tmpdir(), "rf-foreign-"));
    try {
      mkdirSync(join(d, "ssh"));
      mkdirSync(join(d, "var", "lib"), { recursive: true });
      mkdirSync(join(d, "node"));
      writeFileSync(join(d, "ssh", "sshd_config"), "x\n");
      writeFileSync(join(d, "modules"), "x\n");
      writeFileSync(join(d, "known_hosts.old"), "x\n");
      writeFileSync(join(d, "mutable_config.json"), '{"a": "1"}');
      const before = readdirSync(d).sort();
      for (const cmd of [["clean"], ["clean", "--purge-identity"], ["destroy", "--purge-artifacts", "--purge-modules"]]) {
        const r = await sb.run(["-c", d, ...cmd]);
        assert.equal(r.code, 1, `${cmd.join(" ")}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`Refusing to ${cmd[0]} ${d}: it is not a raptiformica cache dir`), r.stderr);
        assert.match(r.stderr, /Nothing was deleted/);
        assert.deepEqual(readdirSync(d).sort(), before, `${cmd.join(" ")} deleted something`);
        assert.ok(existsSync(join(d, "ssh", "sshd_config")));
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it("a cache from before the marker is recognised by raptiformica's own state", async () => {
    for (const [what, make] of [
      ["mutable_config.json with raptiformica/ keys", (d: string) => writeFileSync(join(d, "mutable_config.json"), '{"raptiformica/server/x/y": "1"}')],
      ["a member's identity", (d: string) => (mkdirSync(join(d, "node", "yggdrasil"), { recursive: true }), writeFileSync(join(d, "node", "yggdrasil", "private.key"), "k"))],
    ] as const) {
      const d = mkdtempSync(join(tmpdir(), "rf-legacy-"));
      try {
        make(d);
        mkdirSync(join(d, "artifacts"));
        writeFileSync(join(d, "notes.txt"), "mine");
        const r = await sb.run(["-c", d, "clean", "--purge-identity"]);
        assert.equal(r.code, 0, `${what}: ${r.stderr}`);
        assert.deepEqual(readdirSync(d), ["notes.txt"], what);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    }
  });

  it("entries with raptiformica's names but not its type are left alone and named", async () => {
    let r = await sb.run(["config", "set", "test/some/key", "v"]);
    assert.equal(r.code, 0, r.stderr);
    const outside = mkdtempSync(join(tmpdir(), "rf-outside-"));
    try {
      writeFileSync(join(outside, "precious"), "x");
      writeFileSync(join(sb.cache, "modules"), "a file, not raptiformica's modules dir");
      mkdirSync(join(sb.cache, "last_advertised"));
      symlinkSync(outside, join(sb.cache, "artifacts"));
      r = await sb.run(["clean", "--purge-identity"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /modules \(a file, where raptiformica makes a directory\)/);
      assert.match(r.stderr, /last_advertised \(a directory, where raptiformica makes a file\)/);
      assert.match(r.stderr, /artifacts \(a symlink or special file/);
      assert.deepEqual(readdirSync(sb.cache).sort(), ["artifacts", "last_advertised", "modules"], "none of it is raptiformica's: its marker went too");
      assert.ok(existsSync(join(outside, "precious")));
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
