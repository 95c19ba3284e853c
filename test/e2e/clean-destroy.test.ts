import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, beforeEach, describe, it } from "node:test";
import { ROOT, sandbox, type Sandbox } from "../helpers/cli.ts";

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
    assert.deepEqual(readdirSync(sb.cache).sort(), [".raptiformica-cache", "known_hosts", "known_hosts.old", "ssh"]);
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
        assert.ok(r.stderr.includes(`Refusing to use ${d} as the cache dir: it is not empty and holds no raptiformica cache`), r.stderr);
        assert.match(r.stderr, /Nothing was changed/);
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

  /** A folder of someone else's, with a file in each of the dirs named like raptiformica's. */
  function foreignFolder(): string {
    const f = join(sb.home, "proj");
    for (const sub of ["ssh", "modules/x", "var/lib", "artifacts"]) {
      mkdirSync(join(f, sub), { recursive: true });
      writeFileSync(join(f, sub, "file"), "theirs\n");
    }
    writeFileSync(join(f, "known_hosts"), "theirs\n");
    return f;
  }

  it("a command refuses to write state into a non-empty folder that is not raptiformica's, so clean never deletes there", async () => {
    const f = foreignFolder();
    const before = readdirSync(f).sort();
    for (const cmd of [["identity"], ["config", "set", "app/foo", "bar"], ["advertise", "h1"], ["clean"], ["clean", "--purge-identity"], ["destroy", "--purge-artifacts", "--purge-modules"]]) {
      const r = await sb.run(["-c", f, ...cmd]);
      assert.equal(r.code, 1, `${cmd.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`Refusing to use ${f} as the cache dir`), r.stderr);
      assert.match(r.stderr, /new or empty directory.*default/);
      assert.deepEqual(readdirSync(f).sort(), before, `${cmd.join(" ")} wrote or deleted something`);
    }
    for (const sub of ["ssh", "modules/x", "var/lib", "artifacts"]) assert.ok(existsSync(join(f, sub, "file")), sub);
    assert.ok(existsSync(join(f, "known_hosts")));
  });

  it("the cache dir has its own marker: a dir `slave` installs into, or the local install, is refused as a cache dir", async () => {
    // What slave leaves in /usr/etc/raptiformica: the code, the built-in modules, its marker.
    const inst = join(sb.home, "usr-etc-raptiformica");
    mkdirSync(join(inst, "modules", "compute"), { recursive: true });
    mkdirSync(join(inst, "dist"), { recursive: true });
    mkdirSync(join(inst, "bin"), { recursive: true });
    writeFileSync(join(inst, "modules", "compute", "x.json"), "{}");
    writeFileSync(join(inst, "dist", "raptiformica.mjs"), "");
    writeFileSync(join(inst, "bin", "raptiformica"), "");
    writeFileSync(join(inst, ".raptiformica-managed"), "");
    // The same marker alone, without any cache state, is as ambiguous.
    const pushed = join(sb.home, "pushed");
    mkdirSync(join(pushed, "modules"), { recursive: true });
    writeFileSync(join(pushed, "modules", "m.json"), "{}");
    writeFileSync(join(pushed, ".raptiformica-managed"), "");
    for (const d of [inst, pushed, ROOT]) {
      for (const cmd of [["clean"], ["config", "set", "app/foo", "bar"]]) {
        const r = await sb.run(["-c", d, ...cmd]);
        assert.equal(r.code, 1, `${d} ${cmd.join(" ")}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`Refusing to use ${d} as the cache dir`), r.stderr);
      }
    }
    assert.ok(existsSync(join(inst, "modules", "compute", "x.json")));
    assert.ok(existsSync(join(pushed, "modules", "m.json")));
    assert.ok(!existsSync(join(ROOT, "mutable_config.json")));
    assert.ok(!existsSync(join(ROOT, ".raptiformica-cache")));
  });

  it("a cache marked by earlier builds (.raptiformica-managed with cache state) is still a cache, and gets the new marker", async () => {
    const d = join(sb.home, "old.d");
    let r = await sb.run(["-c", d, "config", "set", "app/foo", "bar"]);
    assert.equal(r.code, 0, r.stderr);
    // As an earlier build left it: the install dir's marker in the cache dir.
    rmSync(join(d, ".raptiformica-cache"));
    writeFileSync(join(d, ".raptiformica-managed"), "");
    mkdirSync(join(d, "node"));
    mkdirSync(join(d, "modules"));
    r = await sb.run(["-c", d, "config", "get", "app/foo"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(d).sort(), [".raptiformica-cache", "modules", "mutable_config.json", "node"]);
    r = await sb.run(["-c", d, "clean", "--purge-identity"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(d));
  });

  it("a symlink to a folder is followed; a dangling symlink or a file is refused naming the path, exit 1", async () => {
    const target = join(sb.home, "real.d");
    mkdirSync(target);
    const link = join(sb.home, "link.d");
    symlinkSync(target, link);
    let r = await sb.run(["-c", link, "config", "set", "app/x", "1"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(target, ".raptiformica-cache")), "the marker is in the target");
    r = await sb.run(["-c", link, "clean", "--purge-identity"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(join(target, "mutable_config.json")));
    r = await sb.run(["-c", link, "config", "set", "app/x", "2"]);
    assert.equal(r.code, 0, r.stderr);

    const dangling = join(sb.home, "dangling");
    symlinkSync(join(sb.home, "nowhere"), dangling);
    const afile = join(sb.home, "afile");
    writeFileSync(afile, "x\n");
    for (const [p, says] of [[dangling, /symbolic link to .*nowhere.*which does not exist/], [afile, /it is a file, not a directory/], [join(afile, "sub"), /cannot be created/]] as const) {
      for (const cmd of [["config", "set", "app/x", "1"], ["identity"], ["clean"], ["destroy"]]) {
        r = await sb.run(["-c", p, ...cmd]);
        assert.equal(r.code, 1, `${p} ${cmd.join(" ")}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`Refusing to use ${p} as the cache dir`), r.stderr);
        assert.match(r.stderr, says);
      }
    }
    assert.ok(!existsSync(join(sb.home, "nowhere")));
    assert.equal(readFileSync(afile, "utf8"), "x\n");
  });
});
