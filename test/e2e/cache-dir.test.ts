import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, beforeEach, describe, it } from "node:test";
import { sandbox, type Sandbox } from "../helpers/cli.ts";

/*
 * The cache dir is where every command writes and what `clean`/`destroy` delete: a setting that
 * resolves to $HOME, `/` or above $HOME is refused by every command, an empty
 * RAPTIFORMICA_CACHE_DIR is unset, `~/` is $HOME's, a cache dir relative to a HOME that is not
 * absolute is refused, and clean/destroy delete only raptiformica's own entries.
 * The built CLI with a throwaway $HOME (never the real one).
 */

describe("the cache dir", () => {
  let sb: Sandbox;
  let foreign: string;
  beforeEach(() => {
    sb?.cleanup();
    sb = sandbox();
    foreign = join(sb.home, "thesis.txt");
    writeFileSync(foreign, "years of work\n");
  });
  after(() => sb.cleanup());

  it("an empty RAPTIFORMICA_CACHE_DIR is unset: clean then works on ~/.raptiformica.d and leaves $HOME alone", async () => {
    let r = await sb.run(["advertise", "h1"], { env: { RAPTIFORMICA_CACHE_DIR: "" } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(sb.cache, "last_advertised")), "written below the default cache dir");
    r = await sb.run(["clean"], { env: { RAPTIFORMICA_CACHE_DIR: "" } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(foreign), "a file in $HOME survives clean");
    assert.ok(!existsSync(sb.cache), "the default cache dir, raptiformica's only, is gone");
  });

  for (const cmd of [["clean"], ["destroy", "--purge-artifacts", "--purge-modules"], ["advertise", "h2"], ["config", "show"]]) {
    it(`\`${cmd[0]}\` refuses a cache dir that is $HOME (env, -c, -c "", -c .), exit 1 naming the value and its source`, async () => {
      const cases: { args: string[]; env: NodeJS.ProcessEnv; says: RegExp }[] = [
        { args: cmd, env: { RAPTIFORMICA_CACHE_DIR: sb.home }, says: new RegExp(`RAPTIFORMICA_CACHE_DIR="${sb.home}".*your home directory`) },
        { args: ["-c", sb.home, ...cmd], env: {}, says: new RegExp(`-c/--cache-dir "${sb.home}".*your home directory`) },
        { args: ["-c", "", ...cmd], env: {}, says: /-c\/--cache-dir "" is empty/ },
        { args: ["-c", ".", ...cmd], env: { RAPTIFORMICA_CACHE_DIR: "ok.d" }, says: /-c\/--cache-dir "\.".*your home directory/ },
        { args: ["--cache-dir", "sub/..", ...cmd], env: {}, says: /--cache-dir "sub\/\.\.".*your home directory/ },
      ];
      for (const c of cases) {
        const r = await sb.run(c.args, { env: c.env });
        assert.equal(r.code, 1, `${c.args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, c.says);
        assert.match(r.stderr, /nothing was changed/);
        assert.ok(existsSync(foreign), `${c.args.join(" ")}: the file in $HOME survives`);
        assert.deepEqual(readdirSync(sb.home), ["thesis.txt"], `${c.args.join(" ")}: nothing written into $HOME`);
      }
    });
  }

  it("refuses a cache dir that is / or a folder above $HOME, for every command", async () => {
    // First a command that only writes (a broken refusal would leave /last_advertised, which
    // is checked): only once that is refused is `clean` run with these values.
    const above = dirname(sb.home);
    for (const [value, what] of [["/", /the root directory \//], [above, /a folder above your home directory/], ["..", /a folder above your home directory/]] as const) {
      const probe = await sb.run(["advertise", "h3"], { env: { RAPTIFORMICA_CACHE_DIR: value } });
      assert.equal(probe.code, 1, probe.stderr);
      assert.match(probe.stderr, what);
      assert.ok(!existsSync(join(value === ".." ? above : value, "last_advertised")));
    }
    for (const [value, what] of [["/", /the root directory \//], [above, /a folder above your home directory/]] as const) {
      for (const args of [["clean"], ["-c", value, "destroy"]]) {
        const r = await sb.run(args, { env: { RAPTIFORMICA_CACHE_DIR: value } });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, what);
      }
    }
    assert.ok(existsSync(foreign));
  });

  it("-c '~//x' is $HOME/x, as the shell would read it", async () => {
    const name = `rf-tilde-${process.pid}.d`;
    try {
      const r = await sb.run(["-c", `~//${name}`, "advertise", "h5"]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(sb.home, name, "last_advertised")), "written below $HOME");
      assert.ok(!existsSync(`/${name}`), "nothing at the root");
    } finally {
      rmSync(`/${name}`, { recursive: true, force: true });
    }
  });

  it("clean removes only raptiformica's entries from a shared dir, and the dir only when nothing else is left", async () => {
    const dir = join(sb.home, "shared");
    mkdirSync(dir);
    writeFileSync(join(dir, "notes.txt"), "mine\n");
    // Shared on purpose: its owner marked it as raptiformica's cache dir, as the refusal says to.
    writeFileSync(join(dir, ".raptiformica-cache"), "");
    mkdirSync(join(dir, "photos"));
    writeFileSync(join(dir, "photos", "a.jpg"), "x");
    for (const args of [["advertise", "h4"], ["config", "set", "test/some/key", "v"]]) {
      const r = await sb.run(["-c", dir, ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
    // What a member leaves behind, with the identity key that clean keeps.
    mkdirSync(join(dir, "node", "yggdrasil"), { recursive: true });
    writeFileSync(join(dir, "node", "yggdrasil", "private.key"), "k");
    writeFileSync(join(dir, "node", "yggdrasil", "yggdrasil.conf"), "c");
    mkdirSync(join(dir, "node", "etcd", "data"), { recursive: true });
    assert.ok(existsSync(join(dir, "mutable_config.json")));

    let r = await sb.run(["-c", dir, "clean"]);
    assert.equal(r.code, 0, r.stderr);
    // The kept identity is raptiformica's state: the dir stays marked as raptiformica's.
    assert.deepEqual(readdirSync(dir).sort(), [".raptiformica-cache", "node", "notes.txt", "photos"]);
    assert.deepEqual(readdirSync(join(dir, "node", "yggdrasil")), ["private.key"], "only the identity is kept");
    assert.ok(existsSync(join(dir, "photos", "a.jpg")));
    assert.match(r.stderr, /left 2 entries raptiformica did not create/);

    r = await sb.run(["-c", dir, "clean", "--purge-identity"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ["notes.txt", "photos"]);

    // A dir of raptiformica's own goes entirely.
    const own = join(sb.home, "own.d");
    r = await sb.run(["-c", own, "config", "set", "test/some/key", "v"]);
    assert.equal(r.code, 0, r.stderr);
    r = await sb.run(["-c", own, "clean"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(own));
    assert.ok(existsSync(foreign));
  });

  it("destroy removes only raptiformica's entries and keeps the dir while other things are in it", async () => {
    const dir = join(sb.home, "shared");
    mkdirSync(dir);
    writeFileSync(join(dir, "notes.txt"), "mine\n");
    // Shared on purpose: its owner marked it as raptiformica's cache dir, as the refusal says to.
    writeFileSync(join(dir, ".raptiformica-cache"), "");
    for (const args of [["config", "set", "test/some/key", "v"]]) {
      const r = await sb.run(["-c", dir, ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
    mkdirSync(join(dir, "artifacts"));
    mkdirSync(join(dir, "modules"));
    let r = await sb.run(["-c", dir, "destroy", "--purge-artifacts", "--purge-modules"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dir), ["notes.txt"]);

    const own = join(sb.home, "own.d");
    r = await sb.run(["-c", own, "config", "set", "test/some/key", "v"]);
    assert.equal(r.code, 0, r.stderr);
    r = await sb.run(["-c", own, "destroy"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(own), "a dir left empty is removed");
  });
});

describe("the cache dir is never placed by accident", () => {
  let sb: Sandbox;
  beforeEach(() => {
    sb?.cleanup();
    sb = sandbox();
  });
  after(() => sb.cleanup());

  it("a leading ~ or ~/ is $HOME's (quoted, or from the environment); ~ alone is $HOME and refused; ~user is refused", async () => {
    let r = await sb.run(["-c", "~/x.d", "advertise", "h1"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(sb.home, "x.d", "last_advertised")));
    r = await sb.run(["advertise", "h1"], { env: { RAPTIFORMICA_CACHE_DIR: "~/y.d" } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(sb.home, "y.d", "last_advertised")));
    for (const [value, says] of [["~", /resolves to your home directory/], ["~/", /resolves to your home directory/], ["~root/z.d", /not ~user/]] as const) {
      r = await sb.run(["-c", value, "clean"]);
      assert.equal(r.code, 1, `${value}: ${r.stderr}`);
      assert.match(r.stderr, says);
    }
    assert.ok(!existsSync(join(sb.home, "~")), "no directory named ~");
    assert.deepEqual(readdirSync(sb.home).sort(), ["x.d", "y.d"]);
  });

  it("an empty or relative HOME is refused unless the cache dir is absolute; nothing lands in the current directory", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "rf-cwd-"));
    try {
      for (const home of ["", "rel"]) {
        for (const args of [["advertise", "h1"], ["-c", "c.d", "advertise", "h1"], ["-c", "~/c.d", "advertise", "h1"], ["clean"]]) {
          const r = await sb.run(args, { env: { HOME: home }, cwd });
          assert.equal(r.code, 1, `HOME=${home} ${args.join(" ")}: ${r.stderr}`);
          assert.match(r.stderr, /relative to \$HOME, and HOME is (empty|"rel", not an absolute path)/);
          assert.match(r.stderr, /Set HOME/);
        }
        const abs = join(cwd, "abs.d");
        const r = await sb.run(["-c", abs, "advertise", "h1"], { env: { HOME: home }, cwd });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(existsSync(join(abs, "last_advertised")));
        rmSync(abs, { recursive: true });
      }
      assert.deepEqual(readdirSync(cwd), [], "nothing written into the current directory");
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
