import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../helpers/cli.ts";

const script = join(ROOT, "modules", "server", "headless", "bootstrap.sh");

/** Runs the headless bootstrap with only the given commands on PATH. */
function bootstrapWith(commands: string[]) {
  const bin = mkdtempSync(join(tmpdir(), "rf-bootstrap-"));
  try {
    for (const c of commands) {
      const real = spawnSync("sh", ["-c", `command -v ${c}`], { encoding: "utf8" }).stdout.trim();
      symlinkSync(real || "/bin/true", join(bin, c));
    }
    return spawnSync("/bin/sh", [script], { encoding: "utf8", env: { PATH: bin } });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

describe("headless bootstrap", () => {
  it("does nothing when node, yggdrasil, etcd and etcdctl are there", () => {
    const r = bootstrapWith(["node", "yggdrasil", "etcd", "etcdctl"]);
    assert.equal(r.status, 0, r.stderr);
  });

  it("on a system without a known package manager: exit 3 naming the host and what to install", () => {
    const r = bootstrapWith(["hostname"]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /no supported package manager \(apt-get, pacman, dnf, apk\) on \S+; install node yggdrasil etcd etcdctl by hand/);
  });
});
