/**
 * The headless bootstrap's decisions, with stand-ins for the installed programs: what it leaves
 * alone, what it wants to install or upgrade, and how it fails. (The installs themselves, apt
 * pins included, are exercised for real in test/e2e/distributions.test.ts.)
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../helpers/cli.ts";

const script = join(ROOT, "modules", "server", "headless", "bootstrap.sh");

/** `yggdrasil -h` of each major: 0.5 added -publickey and -exportkey. */
const YGG_USAGE = {
  "0.4": "Usage of yggdrasil:\n  -autoconf\n  -genconf\n  -normaliseconf\n  -useconffile string\n  -version\n",
  "0.5": "Usage of yggdrasil:\n  -autoconf\n  -exportkey\n  -genconf\n  -publickey\n  -useconffile string\n  -version\n",
};

interface Installed {
  yggdrasil?: "0.4" | "0.5";
  /** `etcd --version`'s number, e.g. "3.4.23". */
  etcd?: string;
  node?: boolean;
  /** More real commands to put on PATH (e.g. hostname). */
  real?: string[];
}

/** Runs the headless bootstrap with only stand-ins of the given programs (and `real` ones) on PATH. */
function bootstrapWith(installed: Installed, env: Record<string, string> = {}) {
  const bin = mkdtempSync(join(tmpdir(), "rf-bootstrap-"));
  const fake = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  try {
    for (const c of ["awk", "sed", "head", "cat", "printf", ...(installed.real ?? [])]) {
      const real = spawnSync("sh", ["-c", `command -v ${c}`], { encoding: "utf8" }).stdout.trim();
      if (real.startsWith("/")) symlinkSync(real, join(bin, c));
    }
    if (installed.node !== false) fake("node", "exit 0");
    if (installed.yggdrasil) fake("yggdrasil", `printf '%s' '${YGG_USAGE[installed.yggdrasil]}' >&2; exit 2`);
    if (installed.etcd) {
      fake("etcd", `echo 'etcd Version: ${installed.etcd}'; echo 'Git SHA: Not provided'`);
      fake("etcdctl", "exit 0");
    }
    return spawnSync("/bin/sh", [script], { encoding: "utf8", env: { PATH: bin, ...env } });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

describe("headless bootstrap", () => {
  it("does nothing (and needs no package manager) when node, Yggdrasil 0.5 and etcd 3.5.13+ are there", () => {
    for (const etcd of ["3.5.13", "3.5.16", "3.6.0", "3.10.1"]) {
      const r = bootstrapWith({ yggdrasil: "0.5", etcd });
      assert.equal(r.status, 0, `etcd ${etcd}: ${r.stderr}`);
    }
  });

  it("wants Yggdrasil 0.4 upgraded to 0.5 and etcd older than 3.5.13 upgraded: with no package manager, exit 3 naming host and what", () => {
    const cases: [Installed, RegExp][] = [
      [{ yggdrasil: "0.4", etcd: "3.5.16" }, / yggdrasil-0\.5 by hand/],
      [{ yggdrasil: "0.5", etcd: "3.4.23" }, / etcd-3\.5\.13\+ by hand/],
      [{ yggdrasil: "0.5", etcd: "3.5.12" }, / etcd-3\.5\.13\+ by hand/],
      [{ yggdrasil: "0.5", etcd: "3.5.16", node: false }, / node by hand/],
    ];
    for (const [installed, what] of cases) {
      const r = bootstrapWith({ ...installed, real: ["hostname"] });
      assert.equal(r.status, 3, JSON.stringify(installed));
      assert.match(r.stderr, /no supported package manager \(apt-get, pacman, dnf, apk\) on \S+; install/);
      assert.match(r.stderr, what, JSON.stringify(installed));
    }
  });

  it("RAPTIFORMICA_PACKAGES=keep leaves installed versions alone (a machine sharing its host's /usr)", () => {
    const r = bootstrapWith({ yggdrasil: "0.4", etcd: "3.4.23" }, { RAPTIFORMICA_PACKAGES: "keep" });
    assert.equal(r.status, 0, r.stderr);
    const missing = bootstrapWith({ yggdrasil: "0.4", real: ["hostname"] }, { RAPTIFORMICA_PACKAGES: "keep" });
    assert.equal(missing.status, 3);
    assert.match(missing.stderr, /install etcd-3\.5\.13\+ by hand/);
  });

  it("a member of a 0.4 cluster keeps its 0.4 (RAPTIFORMICA_YGGDRASIL_MAJOR=0.4, as slave passes it)", () => {
    const r = bootstrapWith({ yggdrasil: "0.4", etcd: "3.5.16" }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.4" });
    assert.equal(r.status, 0, r.stderr);
  });

  it("a host with 0.5 joining a 0.4 cluster: refused, saying the two cannot peer and what to do", () => {
    const r = bootstrapWith({ yggdrasil: "0.5", etcd: "3.5.16", real: ["hostname"] }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.4" });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /the cluster \S+ joins runs Yggdrasil 0\.4, but \S+ has Yggdrasil 0\.5 installed; the two cannot peer\. Migrate the cluster to 0\.5/);
  });

  it("refuses unknown values of its settings, naming them", () => {
    const a = bootstrapWith({ yggdrasil: "0.5", etcd: "3.5.16" }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.6" });
    assert.equal(a.status, 3);
    assert.match(a.stderr, /RAPTIFORMICA_YGGDRASIL_MAJOR=0\.6 on .*: give 0\.4 or 0\.5/);
    const b = bootstrapWith({ yggdrasil: "0.5", etcd: "3.5.16" }, { RAPTIFORMICA_PACKAGES: "never" });
    assert.equal(b.status, 3);
    assert.match(b.stderr, /RAPTIFORMICA_PACKAGES=never on .*: give keep/);
  });
});
