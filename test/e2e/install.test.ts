/**
 * The one-line install as a user meets it: `npm pack` of a fresh clone of this repository (its
 * committed HEAD, nothing built), `npm install -g` of that package into a prefix of its own,
 * offline, and the installed `raptiformica` runs: its version, and a command that reads the
 * built-in modules shipped in the package. Ten seconds or so.
 */
import { strict as assert } from "node:assert";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ROOT } from "../helpers/cli.ts";

const skip = spawnSync("sh", ["-c", "command -v git && command -v npm && command -v tar"]).status !== 0 ? "needs git, npm and tar" : undefined;

describe("npm pack of a fresh clone, npm install -g", { skip, timeout: 180_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "rf-install-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000, ...opts });
    assert.equal(r.status, 0, `${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
    return String(r.stdout);
  }

  it("gives a package whose raptiformica runs, with its modules", () => {
    const src = join(tmp, "src");
    sh("git", ["clone", "-q", ROOT, src]);
    assert.ok(!existsSync(join(src, "dist")), "the clone has nothing built");
    // The build's tools (devDependencies) without the network: this checkout's node_modules.
    symlinkSync(realpathSync(join(ROOT, "node_modules")), join(src, "node_modules"));
    const packed = sh("npm", ["pack", "--pack-destination", tmp], { cwd: src }).trim().split("\n").pop() ?? "";
    const tgz = join(tmp, packed);
    assert.match(packed, /^raptiformica-\d+\.\d+\.\d+\.tgz$/);

    const files = sh("tar", ["tzf", tgz]).split("\n");
    for (const f of ["package/bin/raptiformica", "package/dist/raptiformica.mjs", "package/dist/etcd3-proto/rpc.proto", "package/modules/compute/netns/start_instance.sh", "package/modules/server/headless/bootstrap.sh"]) {
      assert.ok(files.includes(f), `${f} is in the package`);
    }
    assert.ok(!files.some((f) => f.startsWith("package/src/") || f.startsWith("package/test/")), "only what runs is shipped");

    // Offline: the bundle carries its libraries, so installing fetches nothing.
    const prefix = join(tmp, "prefix");
    sh("npm", ["install", "-g", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", tgz], { cwd: tmp });
    const rf = join(prefix, "bin", "raptiformica");
    const env = { PATH: process.env["PATH"], HOME: join(tmp, "home"), LANG: "C.UTF-8" };
    const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
    assert.equal(sh(rf, ["--version"], { env }).trim(), version);
    const config = JSON.parse(sh(rf, ["config", "show", "--json"], { env })) as Record<string, string>;
    assert.match(config["raptiformica/compute/netns/headless/start_instance"] ?? "", /modules\/compute\/netns\/start_instance\.sh/, "the built-in modules load");
    assert.ok(readdirSync(join(prefix, "lib", "node_modules")).includes("raptiformica"));
  });
});
