import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { makePrivateDir } from "../../src/util/private-dir.ts";

describe("makePrivateDir", () => {
  const root = mkdtempSync(join(tmpdir(), "rf-private-dir-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("makes missing parents, each mode 0700, and leaves an existing directory as it is", () => {
    const deep = join(root, "a", "b", "c");
    makePrivateDir(deep);
    for (const d of [join(root, "a"), join(root, "a", "b"), deep]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
    makePrivateDir(deep);
    assert.ok(statSync(deep).isDirectory());
  });

  it("throws ENOENT, not a loop, under a directory removed while still in use", () => {
    // In a child with a time limit: its cwd is removed under it, and "a/b" resolves through it.
    // Node's own recursive mkdir spins there for ever (mkdir a/b, a: ENOENT; ".": EEXIST and a
    // directory, so again), which is how an agent whose member's home was deleted burnt a core.
    const gone = join(root, "gone");
    const script = `
      import { mkdirSync, rmdirSync } from "node:fs";
      import { makePrivateDir } from ${JSON.stringify(join(import.meta.dirname, "../../src/util/private-dir.ts"))};
      mkdirSync(${JSON.stringify(gone)});
      process.chdir(${JSON.stringify(gone)});
      rmdirSync(${JSON.stringify(gone)});
      try { makePrivateDir("a/b"); console.log("made"); } catch (e) { console.log(e.code); }
    `;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.signal, null, `the child did not finish in 20 s (looping?): ${r.stderr}`);
    assert.equal(r.stdout.trim(), "ENOENT", r.stderr);
  });
});
