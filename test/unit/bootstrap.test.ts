/**
 * The headless bootstrap's decisions, with stand-ins for the installed programs: what it leaves
 * alone, what it wants to install or upgrade, which package-manager commands it chooses for
 * which distribution (its RAPTIFORMICA_BOOTSTRAP_PLAN output for the os-release files in
 * test/fixtures/os-release), that it runs exactly those, and how it fails. (The installs
 * themselves are exercised for real only on Debian 12 and 13, apt pins included, in
 * test/e2e/distributions.test.ts; pacman, dnf and apk hosts are not available here.)
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../helpers/cli.ts";

const script = join(ROOT, "modules", "server", "headless", "bootstrap.sh");
const OS_RELEASES = join(ROOT, "test", "fixtures", "os-release");
type OsRelease = "debian-12" | "debian-13" | "ubuntu-24.04" | "linuxmint-22" | "arch" | "fedora-41" | "alpine-3.20" | "void";

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
  /** The distribution (a file of test/fixtures/os-release), as RAPTIFORMICA_OS_RELEASE. */
  os?: OsRelease;
  /** Package managers to stand in: each logs its command line (see `ran`) and succeeds. */
  managers?: ("apt-get" | "pacman" | "dnf" | "apk")[];
}

/**
 * Runs the headless bootstrap with only stand-ins of the given programs (and `real` ones) on
 * PATH; `ran` is what the stand-in package managers were called with, one command a line.
 */
function bootstrapWith(installed: Installed, env: Record<string, string> = {}) {
  const bin = mkdtempSync(join(tmpdir(), "rf-bootstrap-"));
  const calls = join(bin, "calls.log");
  const fake = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  try {
    for (const c of ["awk", "sed", "head", "cat", "printf", ...(installed.real ?? [])]) {
      const real = spawnSync("sh", ["-c", `command -v ${c}`], { encoding: "utf8" }).stdout.trim();
      if (real.startsWith("/")) symlinkSync(real, join(bin, c));
    }
    for (const m of installed.managers ?? []) fake(m, `echo "${m} $*" >> '${calls}'`);
    if (installed.node !== false) fake("node", "exit 0");
    if (installed.yggdrasil) fake("yggdrasil", `printf '%s' '${YGG_USAGE[installed.yggdrasil]}' >&2; exit 2`);
    if (installed.etcd) {
      fake("etcd", `echo 'etcd Version: ${installed.etcd}'; echo 'Git SHA: Not provided'`);
      fake("etcdctl", "exit 0");
    }
    const os = installed.os ? { RAPTIFORMICA_OS_RELEASE: join(OS_RELEASES, installed.os) } : {};
    const r = spawnSync("/bin/sh", [script], { encoding: "utf8", env: { PATH: bin, ...os, ...env } });
    return { ...r, ran: existsSync(calls) ? readFileSync(calls, "utf8").trim().split("\n") : [] };
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

  it("wants Yggdrasil 0.4 upgraded to 0.5 and etcd older than 3.5.13 upgraded: on a distribution it does not know, exit 3 naming host, distribution and what", () => {
    const cases: [Installed, RegExp][] = [
      [{ yggdrasil: "0.4", etcd: "3.5.16" }, / yggdrasil-0\.5 by hand/],
      [{ yggdrasil: "0.5", etcd: "3.4.23" }, / etcd-3\.5\.13\+ by hand/],
      [{ yggdrasil: "0.5", etcd: "3.5.12" }, / etcd-3\.5\.13\+ by hand/],
      [{ yggdrasil: "0.5", etcd: "3.5.16", node: false }, / node by hand/],
    ];
    for (const [installed, what] of cases) {
      // Void Linux, with every package manager there is on PATH: os-release decides, not PATH.
      const r = bootstrapWith({ ...installed, real: ["hostname"], os: "void", managers: ["apt-get", "pacman", "dnf", "apk"] });
      assert.equal(r.status, 3, JSON.stringify(installed));
      assert.match(r.stderr, /cannot install on \S+: its os-release \(\S+\/void\) says Void Linux \(ID=void, ID_LIKE=none\), a distribution the headless bootstrap does not know; it installs with apt-get on Debian and Ubuntu, pacman on Arch, dnf on Fedora and apk on Alpine/);
      assert.match(r.stderr, what, JSON.stringify(installed));
      assert.deepEqual(r.ran, [], "no package manager was run");
      // The plan fails the same way.
      const p = bootstrapWith({ ...installed, real: ["hostname"], os: "void" }, { RAPTIFORMICA_BOOTSTRAP_PLAN: "1" });
      assert.equal(p.status, 3);
      assert.equal(p.stdout, "");
    }
  });

  it("a known distribution whose package manager is missing: exit 3 naming host, distribution, manager and what", () => {
    const r = bootstrapWith({ yggdrasil: "0.5", real: ["hostname"], os: "debian-13", managers: ["pacman", "dnf", "apk"] });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /cannot install on \S+: it runs Debian GNU\/Linux 13 \(trixie\) \(os-release: \S+\/debian-13\), which installs with apt-get, but apt-get is not on its PATH\. Install etcd-3\.5\.13\+ by hand there/);
    assert.deepEqual(r.ran, []);
  });

  it("no os-release at all: exit 3 naming host and file", () => {
    const r = bootstrapWith({ yggdrasil: "0.5", real: ["hostname"], managers: ["apt-get"] }, { RAPTIFORMICA_OS_RELEASE: "/nonexistent/os-release" });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /cannot tell which distribution \S+ runs: \/nonexistent\/os-release is missing or unreadable\. Install etcd-3\.5\.13\+ by hand there/);
    assert.deepEqual(r.ran, []);
  });

  it("RAPTIFORMICA_PACKAGES=keep leaves installed versions alone (a machine sharing its host's /usr)", () => {
    const r = bootstrapWith({ yggdrasil: "0.4", etcd: "3.4.23" }, { RAPTIFORMICA_PACKAGES: "keep" });
    assert.equal(r.status, 0, r.stderr);
    // What is missing is installed, and only that: Yggdrasil 0.4 stays.
    const missing = bootstrapWith({ yggdrasil: "0.4", os: "debian-12" }, { RAPTIFORMICA_PACKAGES: "keep", RAPTIFORMICA_BOOTSTRAP_PLAN: "1" });
    assert.equal(missing.status, 0, missing.stderr);
    assert.deepEqual(missing.stdout.trim().split("\n"), ["pin etcd trixie etcd-server etcd-client", "apt-get update -q", "apt-get install -y -q etcd-server etcd-client"]);
    const unknown = bootstrapWith({ yggdrasil: "0.4", real: ["hostname"], os: "void" }, { RAPTIFORMICA_PACKAGES: "keep" });
    assert.equal(unknown.status, 3);
    assert.match(unknown.stderr, /Install etcd-3\.5\.13\+ by hand/);
  });

  it("a member of a 0.4 cluster keeps its 0.4 (RAPTIFORMICA_YGGDRASIL_MAJOR=0.4, as slave passes it)", () => {
    const r = bootstrapWith({ yggdrasil: "0.4", etcd: "3.5.16" }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.4" });
    assert.equal(r.status, 0, r.stderr);
  });

  it("a host with 0.5 joining a 0.4 cluster: refused, saying the two cannot peer and what to do", () => {
    const r = bootstrapWith({ yggdrasil: "0.5", etcd: "3.5.16", real: ["hostname"] }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.4" });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /the cluster \S+ joins runs Yggdrasil 0\.4, but \S+ has Yggdrasil 0\.5 installed; the two cannot peer\. Move the cluster to 0\.5 with `raptiformica migrate-mesh`/);
  });

  it("refuses unknown values of its settings, naming them", () => {
    const a = bootstrapWith({ yggdrasil: "0.5", etcd: "3.5.16" }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.6" });
    assert.equal(a.status, 3);
    assert.match(a.stderr, /RAPTIFORMICA_YGGDRASIL_MAJOR=0\.6 on .*: give 0\.4 or 0\.5/);
    const b = bootstrapWith({ yggdrasil: "0.5", etcd: "3.5.16" }, { RAPTIFORMICA_PACKAGES: "never" });
    assert.equal(b.status, 3);
    assert.match(b.stderr, /RAPTIFORMICA_PACKAGES=never on .*: give keep/);
  });

  describe("which package-manager commands for which distribution (RAPTIFORMICA_BOOTSTRAP_PLAN=1)", () => {
    const plan = (os: OsRelease, installed: Installed = {}, env: Record<string, string> = {}) => {
      // No package manager on PATH: the plan goes by os-release alone.
      const r = bootstrapWith({ os, ...installed }, { RAPTIFORMICA_BOOTSTRAP_PLAN: "1", ...env });
      assert.equal(r.status, 0, `${os}: ${r.stderr}`);
      assert.deepEqual(r.ran, []);
      return r.stdout.trim().split("\n");
    };
    const APT_ALL = ["apt-get update -q", "apt-get install -y -q nodejs yggdrasil etcd-server etcd-client"];

    it("Debian 12: Yggdrasil pinned from bookworm-backports and etcd from trixie, then apt-get", () => {
      assert.deepEqual(plan("debian-12", { node: false }), ["pin yggdrasil bookworm-backports yggdrasil", "pin etcd trixie etcd-server etcd-client", ...APT_ALL]);
      // Only what is missing or old is pinned and installed.
      assert.deepEqual(plan("debian-12", { yggdrasil: "0.5", etcd: "3.4.23" }), ["pin etcd trixie etcd-server etcd-client", "apt-get update -q", "apt-get install -y -q etcd-server etcd-client"]);
      assert.deepEqual(plan("debian-12", { yggdrasil: "0.4", etcd: "3.5.16" }), ["pin yggdrasil bookworm-backports yggdrasil", "apt-get update -q", "apt-get install -y -q yggdrasil"]);
    });

    it("Debian 12 joining a 0.4 cluster: its own Yggdrasil 0.4 (the pin removed), etcd still pinned", () => {
      assert.deepEqual(plan("debian-12", { node: false }, { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.4" }), ["unpin yggdrasil", "pin etcd trixie etcd-server etcd-client", ...APT_ALL]);
    });

    it("Debian 13, Ubuntu 24.04 and a derivative of Ubuntu (by ID_LIKE): apt-get, the release's own packages, no pins", () => {
      for (const os of ["debian-13", "ubuntu-24.04", "linuxmint-22"] as const) {
        assert.deepEqual(plan(os, { node: false }), APT_ALL, os);
        assert.deepEqual(plan(os, { yggdrasil: "0.5", etcd: "3.4.30" }), ["apt-get update -q", "apt-get install -y -q etcd-server etcd-client"], os);
      }
    });

    it("Arch: pacman; Fedora 41: dnf; Alpine 3.20: apk", () => {
      assert.deepEqual(plan("arch", { node: false }), ["pacman -Sy --noconfirm --needed nodejs yggdrasil etcd"]);
      assert.deepEqual(plan("fedora-41", { node: false }), ["dnf install -y nodejs yggdrasil etcd"]);
      assert.deepEqual(plan("alpine-3.20", { node: false }), ["apk add --no-cache nodejs yggdrasil etcd etcd-ctl"]);
    });

    it("prints nothing when nothing is missing", () => {
      const r = bootstrapWith({ os: "arch", yggdrasil: "0.5", etcd: "3.5.16" }, { RAPTIFORMICA_BOOTSTRAP_PLAN: "1" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "");
    });

    it("without the plan switch it runs exactly the planned commands with the distribution's manager, whichever others are on PATH", () => {
      const all = ["apt-get", "pacman", "dnf", "apk"] as const;
      for (const os of ["ubuntu-24.04", "arch", "fedora-41", "alpine-3.20"] as const) {
        const planned = plan(os, { node: false });
        // The stand-ins install nothing, so the bootstrap's check afterwards fails: exit 3 naming what is still missing.
        const r = bootstrapWith({ os, node: false, managers: [...all], real: ["hostname"] });
        assert.deepEqual(r.ran, planned, `${os}: ${r.stderr}`);
        assert.equal(r.status, 3, os);
        assert.match(r.stderr, /node is still missing on \S+ after the install/, os);
      }
    });
  });
});
