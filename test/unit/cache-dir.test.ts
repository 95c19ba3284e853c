import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { describe, it } from "node:test";
import { cachePaths, isOwnedEntry, CACHE_MARKER, ownedBase, resolveCacheDir } from "../../src/config/paths.ts";
import { nodePaths } from "../../src/node/paths.ts";

describe("resolveCacheDir", () => {
  const home = "/home/u";
  it("an empty RAPTIFORMICA_CACHE_DIR counts as unset", () => {
    assert.equal(resolveCacheDir(undefined, { RAPTIFORMICA_CACHE_DIR: "" }, home), "/home/u/.raptiformica.d");
  });

  it("refuses $HOME, / and folders above $HOME, naming the value and where it came from", () => {
    const refused: [string | undefined, NodeJS.ProcessEnv, RegExp][] = [
      ["", {}, /-c\/--cache-dir "" is empty/],
      [" ", {}, /-c\/--cache-dir " " is empty/],
      [".", {}, /-c\/--cache-dir "\.".*your home directory \/home\/u/],
      ["./", {}, /your home directory/],
      ["a/..", {}, /your home directory/],
      ["/home/u/", {}, /your home directory/],
      ["..", {}, /\/home, a folder above your home directory/],
      ["/", {}, /the root directory \//],
      ["/home", {}, /a folder above your home directory/],
      [undefined, { RAPTIFORMICA_CACHE_DIR: "/home/u" }, /RAPTIFORMICA_CACHE_DIR="\/home\/u".*Fix the RAPTIFORMICA_CACHE_DIR environment variable/],
      [undefined, { RAPTIFORMICA_CACHE_DIR: "../.." }, /RAPTIFORMICA_CACHE_DIR="\.\.\/\.\.".*the root directory/],
    ];
    for (const [flag, env, says] of refused) {
      assert.throws(() => resolveCacheDir(flag, env, home), (e: Error) => e.name === "UserError" && says.test(e.message), `${flag} ${JSON.stringify(env)}`);
    }
  });

  it("accepts folders below $HOME and elsewhere, and sibling names that only share a prefix", () => {
    assert.equal(resolveCacheDir("/home/u2", {}, home), "/home/u2");
    assert.equal(resolveCacheDir("/home/u/x/..//y", {}, home), "/home/u/y");
    assert.equal(resolveCacheDir("/var/lib/raptiformica", {}, home), "/var/lib/raptiformica");
  });

  it("follows symlinks: a link to $HOME is $HOME", () => {
    const base = mkdtempSync(join(tmpdir(), "rf-cachedir-"));
    try {
      const h = join(base, "home");
      mkdirSync(h);
      symlinkSync(h, join(base, "link"));
      symlinkSync(base, join(h, "up"));
      assert.throws(() => resolveCacheDir(join(base, "link"), {}, h), /your home directory/);
      assert.throws(() => resolveCacheDir("up", {}, h), /a folder above your home directory/);
      assert.equal(resolveCacheDir("ok.d", {}, join(base, "link")), join(base, "link", "ok.d"));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe("the entries raptiformica owns in a cache dir", () => {
  it("cover every path it keeps state in", () => {
    const root = "/c";
    const paths = [...Object.values(cachePaths(root)), ...Object.values(nodePaths(cachePaths(root).node))].filter((p) => p !== root);
    for (const p of paths) {
      const top = relative(root, p).split(sep)[0] as string;
      assert.ok(isOwnedEntry(top), `${p} is under ${top}, which clean would not remove`);
    }
  });
  it("include lock and temp siblings of its files, not look-alike names of others", () => {
    for (const name of ["mutable_config.json.lock", "mutable_config.json.1234567", "pending_config.jsonl.replaying", "known_hosts.lock"]) assert.ok(isOwnedEntry(name), name);
    for (const name of ["notes.txt", "modules.bak", "node_modules", ".ssh", "mutable_config.json5", "var2"]) assert.ok(!isOwnedEntry(name), name);
  });
});

describe("resolveCacheDir: ~ and HOME", () => {
  it("a leading ~ or ~/ is $HOME's; ~ alone is $HOME and refused; ~user is refused", () => {
    assert.equal(resolveCacheDir("~/x.d", {}, "/home/u"), "/home/u/x.d");
    assert.equal(resolveCacheDir(undefined, { RAPTIFORMICA_CACHE_DIR: "~/y.d" }, "/home/u"), "/home/u/y.d");
    assert.equal(resolveCacheDir("/a/~/b", {}, "/home/u"), "/a/~/b", "a ~ elsewhere is a plain name");
    assert.throws(() => resolveCacheDir("~", {}, "/home/u"), /your home directory/);
    assert.throws(() => resolveCacheDir("~/", {}, "/home/u"), /your home directory/);
    assert.throws(() => resolveCacheDir("~root/x", {}, "/home/u"), /not ~user/);
  });

  it("~ followed by several / is $HOME's too, as the shell reads it (never the root's)", () => {
    assert.equal(resolveCacheDir("~//x", {}, "/home/u"), "/home/u/x");
    assert.equal(resolveCacheDir("~///x/y", {}, "/home/u"), "/home/u/x/y");
    assert.equal(resolveCacheDir(undefined, { RAPTIFORMICA_CACHE_DIR: "~//z" }, "/home/u"), "/home/u/z");
    assert.throws(() => resolveCacheDir("~//", {}, "/home/u"), /your home directory/);
    assert.throws(() => resolveCacheDir("~//x", {}, ""), /relative to \$HOME, and HOME is/);
  });

  it("refuses a cache dir relative to $HOME when HOME is empty or relative; an absolute one is fine", () => {
    for (const home of ["", "rel", "./h"]) {
      for (const flag of [undefined, "c.d", "~/c.d"]) {
        assert.throws(() => resolveCacheDir(flag, {}, home), (e: Error) => e.name === "UserError" && /relative to \$HOME, and HOME is/.test(e.message), `${home} ${flag}`);
      }
      assert.equal(resolveCacheDir("/abs/c.d", {}, home), "/abs/c.d");
      assert.throws(() => resolveCacheDir("/", {}, home), /the root directory/);
    }
  });
});

describe("the type each entry must have", () => {
  it("dirs are dirs, files are files, a file's lock may be either, the marker is a file", () => {
    assert.deepEqual(ownedBase("modules"), { base: "modules", kind: "dir" });
    assert.deepEqual(ownedBase("known_hosts"), { base: "known_hosts", kind: "file" });
    assert.deepEqual(ownedBase("known_hosts.old"), { base: "known_hosts", kind: "file" });
    assert.deepEqual(ownedBase("mutable_config.json.lock"), { base: "mutable_config.json", kind: "lock" });
    assert.deepEqual(ownedBase(CACHE_MARKER), { base: CACHE_MARKER, kind: "file" });
    assert.equal(ownedBase(".raptiformica-managed"), undefined, "the install dir's marker is not a cache entry");
    assert.equal(ownedBase("modules.d"), undefined);
  });
});
