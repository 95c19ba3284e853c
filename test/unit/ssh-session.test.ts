import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { splitNodeAndCommand } from "../../src/cli/ssh.ts";
import { memberTargetByKey, namedMembers, pickMember, targetOf } from "../../src/ops/pick-member.ts";
import { LAUNCHER_INSTALL_SCRIPT, LAUNCHER_MARK, launcherText } from "../../src/remote/launcher.ts";
import { renderSshConfig, sessionArgv, type SshSettings } from "../../src/remote/ssh.ts";
import { UserError } from "../../src/util/errors.ts";

const N = "raptiformica/meshnet/neighbours";
const key = (c: string) => c.repeat(64);
const mapping = {
  [`${N}/${key("a")}/mesh_address`]: "200:1111:2222::1",
  [`${N}/${key("a")}/name`]: "web-1",
  [`${N}/${key("a")}/host`]: "198.51.100.1",
  [`${N}/${key("b")}/mesh_address`]: "200:1111:3333::1",
  [`${N}/${key("b")}/name`]: "web-2",
  [`${N}/${key("b")}/host`]: "198.51.100.2",
  [`${N}/${key("b")}/ssh_port`]: "2222",
  [`${N}/${key("c")}/mesh_address`]: "201:aaaa::7",
  [`${N}/${key("c")}/host`]: "198.51.100.3",
  [`${N}/${key("d")}/mesh_address`]: "202:bbbb::9",
  [`${N}/${key("d")}/name`]: "behind-nat",
  [`${N}/${key("e")}/mesh_address`]: "203:cccc::1",
  [`${N}/${key("e")}/name`]: "gone",
  [`${N}/${key("e")}/host`]: "198.51.100.5",
  [`${N}/${key("e")}/left`]: "true",
};
const members = namedMembers(mapping);
const pick = (q: string) => pickMember(members, q).name;

describe("raptiformica ssh NODE", () => {
  it("names a member by its name, mesh address (any spelling) or a unique prefix of either", () => {
    assert.equal(pick("web-1"), "web-1");
    assert.equal(pick("200:1111:3333::1"), "web-2");
    assert.equal(pick("[200:1111:3333:0:0:0:0:1]"), "web-2", "another spelling of the same address");
    assert.equal(pick("web-2"), "web-2");
    assert.equal(pick("201"), "cccccccccccccccc", "a member without a registered name goes by its key's start");
    assert.equal(pick("beh"), "behind-nat");
    assert.equal(pick("200:1111:2"), "web-1");
    assert.deepEqual(targetOf(pickMember(members, "web-2")), { host: "198.51.100.2", port: 2222 });
  });

  it("finds a member by its key (a run record's) as `ssh NODE` reaches it; none for an unknown or departed one", () => {
    assert.deepEqual(memberTargetByKey(mapping, key("b")), { host: "198.51.100.2", port: 2222 });
    assert.equal(memberTargetByKey(mapping, key("f")), undefined);
    assert.equal(memberTargetByKey(mapping, key("e")), undefined, "it left");
    assert.throws(() => memberTargetByKey(mapping, key("d")), (e: unknown) => e instanceof UserError && /behind-nat .* has no host/.test(e.message));
  });

    it("refuses an ambiguous prefix, listing the members it names", () => {
    for (const q of ["web", "200:1111:"]) {
      assert.throws(
        () => pickMember(members, q),
        (e: unknown) => e instanceof UserError && /names 2 members/.test(e.message) && /web-1 \(200:1111:2222::1, 198\.51\.100\.1\)/.test(e.message) && /web-2/.test(e.message) && !/behind-nat/.test(e.message),
        q,
      );
    }
  });

  it("refuses an unknown name, listing every member (not those that left)", () => {
    for (const q of ["db", "", "gone", "203:cccc::1"]) {
      assert.throws(
        () => pickMember(members, q),
        (e: unknown) => e instanceof UserError && /No member is named/.test(e.message) && /web-1/.test(e.message) && /behind-nat \(202:bbbb::9, no host\)/.test(e.message) && !/gone \(/.test(e.message),
        q,
      );
    }
  });

  it("says how to bring a member in when this machine knows none", () => {
    assert.throws(() => pickMember([], "web"), /No member is named "web": This machine knows no cluster member.*raptiformica slave HOST/);
  });

  it("says how to reach a member that has no host", () => {
    assert.throws(() => targetOf(pickMember(members, "behind-nat")), /has no host to reach it on.*ssh root@202:bbbb::9/);
  });

  it("splits NODE and COMMAND at --, which commander drops", () => {
    assert.deepEqual(splitNodeAndCommand(["hostname"], ["ssh", "--", "hostname"]), { command: ["hostname"] });
    assert.deepEqual(splitNodeAndCommand([], ["ssh"]), { command: [] });
    assert.deepEqual(splitNodeAndCommand(["web"], ["-c", "/x", "ssh", "web"]), { node: "web", command: [] });
    assert.deepEqual(splitNodeAndCommand(["web", "ls", "-la", "--"], ["ssh", "web", "--", "ls", "-la", "--"]), { node: "web", command: ["ls", "-la", "--"] });
    assert.deepEqual(splitNodeAndCommand(["web", "ls"], ["ssh", "web", "ls"]), { node: "web", command: ["ls"] });
    assert.throws(() => splitNodeAndCommand(["a", "b", "ls"], ["ssh", "a", "b", "--", "ls"]), /one NODE before `--`, got 2/);
  });
});

describe("raptiformica ssh: agent forwarding as ssh itself reads it", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-ssh-session-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const s: SshSettings = { knownHosts: join(dir, "known_hosts"), stateDir: dir, identities: [] };
  writeFileSync(join(dir, "ssh_config"), renderSshConfig(s));
  const t = { host: "198.51.100.1", port: 22 };
  /** What `ssh -G` makes of the argv: the options ssh would connect with. */
  function effective(argv: string[]): Map<string, string> {
    const dest = argv.indexOf("root@198.51.100.1");
    const r = spawnSync("ssh", ["-G", ...argv.slice(0, dest + 1).filter((a) => a !== "-t")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return new Map(r.stdout.split("\n").map((l) => [l.split(" ")[0] ?? "", l.slice(l.indexOf(" ") + 1)]));
  }

  it("forwards the agent for an interactive login, over raptiformica's ForwardAgent no", () => {
    const argv = sessionArgv(s, t, [], true);
    assert.equal(argv[0], "-t");
    assert.equal(effective(argv).get("forwardagent"), "yes");
    // Not over a shared master connection: those are opened without the agent.
    assert.equal(effective(argv).get("controlpath"), undefined);
    assert.equal(effective(sessionArgv(s, t, [], false)).get("forwardagent"), "no");
    assert.match(effective(sessionArgv(s, t, [], false)).get("controlpath") ?? "", /cm-/);
  });

  it("runs a command without the agent unless asked, each word quoted for the remote shell", () => {
    const argv = sessionArgv(s, t, ["printf", "%s|", "a b", "$(id)"], false);
    assert.equal(effective(argv).get("forwardagent"), "no");
    assert.deepEqual(argv.slice(-2), ["--", "printf '%s|' 'a b' '$(id)'"]);
    assert.ok(!argv.includes("-t"));
    assert.equal(effective(sessionArgv(s, t, ["true"], true)).get("forwardagent"), "yes");
    // Every other command raptiformica runs goes through this config alone.
    assert.equal(effective(["-F", join(dir, "ssh_config"), "root@198.51.100.1"]).get("forwardagent"), "no");
  });
});

describe("the launcher slave puts on a member's PATH", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-launcher-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const own = join(dir, "install", "bin", "raptiformica");
  mkdirSync(join(dir, "install", "bin"), { recursive: true });
  writeFileSync(own, "#!/bin/sh\necho install\n");
  chmodSync(own, 0o755);
  const install = (target: string, path = "/usr/bin:/bin") =>
    spawnSync("sh", ["-c", LAUNCHER_INSTALL_SCRIPT, "sh", own, target, launcherText(join(dir, "install")), LAUNCHER_MARK], { encoding: "utf8", env: { PATH: path } });

  it("is written where there is none, runs the install, and is rewritten when it is ours", () => {
    const f = join(dir, "bin1", "raptiformica");
    assert.equal(install(f).stdout.trim(), "written");
    assert.equal(spawnSync(f, [], { encoding: "utf8" }).stdout, "install\n");
    writeFileSync(f, `#!/bin/sh\n${LAUNCHER_MARK}\nexec /old/path "$@"\n`);
    assert.equal(install(f).stdout.trim(), "written");
    assert.equal(readFileSync(f, "utf8"), launcherText(join(dir, "install")));
  });

  it("never replaces a file that is not ours, nor a link to the install itself", () => {
    mkdirSync(join(dir, "bin2"));
    const f = join(dir, "bin2", "raptiformica");
    writeFileSync(f, "#!/bin/sh\necho mine\n");
    assert.equal(install(f).stdout.trim(), "foreign");
    assert.equal(readFileSync(f, "utf8"), "#!/bin/sh\necho mine\n");
    const l = join(dir, "bin2", "linked");
    symlinkSync(own, l);
    assert.equal(install(l).stdout.trim(), "linked");
  });

  it("writes nothing where the login environment already finds the install (a machine sharing its host's /usr)", () => {
    const f = join(dir, "bin3", "raptiformica");
    assert.equal(install(f, `${join(dir, "install", "bin")}:/usr/bin:/bin`).stdout.trim(), "on-path");
    assert.equal(spawnSync("test", ["-e", f]).status, 1);
  });
});
