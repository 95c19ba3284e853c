/**
 * The case `netns-locked-root`: on machines where root's password is locked (installed with a
 * sudo user, `passwd -l root`, a shadow file whose root line says "!"), a netns instance's sshd
 * (no PAM) refused the operator's key for root ("User root not allowed because account is
 * locked"), so `spawn --compute-type netns` — and the quick start — failed at "connecting".
 *
 * The host's /etc/shadow is never touched: the spawn runs in a mount namespace of its own where
 * /etc/shadow is a copy whose root line is locked, which is what the instance's sshd (started
 * from there) sees. About 20 s.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execa } from "execa";
import { BIN, sandbox, type Sandbox } from "../helpers/cli.ts";
import { pidsByNetInode } from "../lab/netns.ts";
import { sshdSaid } from "../../src/ops/spawn.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (network and mount namespaces)"
    : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v yggdrasil && command -v etcd && command -v unshare"]).status !== 0
      ? "needs openssh-server, yggdrasil, etcd and util-linux"
      : undefined;

describe("netns instances when root's password is locked (case netns-locked-root)", { skip, timeout: 240_000 }, () => {
  let op: Sandbox;
  let lockedShadow: string;
  let instanceDir: string | undefined;

  before(() => {
    op = sandbox();
    // This host's shadow file with root locked the way `passwd -l root` does it: "!" in front.
    const lines = readFileSync("/etc/shadow", "utf8").split("\n");
    const locked = lines.map((l) => (l.startsWith("root:") ? l.replace(/^root:!?/, "root:!") : l));
    if (!locked.some((l) => l.startsWith("root:"))) locked.unshift("root:!:19000:0:99999:7:::");
    lockedShadow = join(op.home, "shadow");
    writeFileSync(lockedShadow, locked.join("\n"), { mode: 0o640 });
    const st = statSync("/etc/shadow");
    chownSync(lockedShadow, st.uid, st.gid);
    chmodSync(lockedShadow, st.mode & 0o777);
  });
  after(async () => {
    const r = await op.run(["destroy"], { timeout: 120_000 });
    if (r.code !== 0) process.stderr.write(`destroy failed: ${r.stderr}\n`);
    op.cleanup();
  });

  it("spawn works, the operator's key accepted for root; the host's shadow file is untouched", async () => {
    const before = readFileSync("/etc/shadow", "utf8");
    const r = await execa("unshare", ["--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$1" /etc/shadow && shift && exec "$@"', "sh", lockedShadow, BIN, "spawn", "--compute-type", "netns"], {
      env: { PATH: process.env["PATH"], HOME: op.home, LANG: "C.UTF-8" },
      extendEnv: false,
      cwd: op.home,
      reject: false,
      timeout: 180_000,
    });
    assert.equal(r.exitCode, 0, `spawn with root locked failed:\n${r.stderr}`);
    const [uuid, , , meshAddress] = r.stdout.trim().split(" ");
    assert.match(meshAddress ?? "", /^2[0-9a-f]{2}:/);
    // The instance's sshd saw root locked (its view of the file is the locked copy) and let the key in anyway.
    const dir = join(op.cache, "var", "machines", "netns", "headless", uuid!);
    assert.doesNotMatch(readFileSync(join(dir, "sshd.log"), "utf8"), /account is locked/);
    assert.equal(readFileSync("/etc/shadow", "utf8"), before, "the host's /etc/shadow is unchanged");
    instanceDir = dir;
  });

  it("destroy stops every process of an instance started from another mount namespace", async () => {
    assert.ok(instanceDir, "needs the instance of the test before");
    // This mount namespace sees /run/netns/<ns> only as an empty file (the spawn's own mount
    // namespace held the bind mount): `ip netns pids` lists nothing here.
    const inode = readFileSync(join(instanceDir, "netns-inode"), "utf8").trim();
    assert.match(inode, /^\d+$/);
    const inInstance = (): number[] => pidsByNetInode(new Map([[inode, "instance"]])).get("instance") ?? [];
    assert.ok(inInstance().length > 0, "the instance's sshd, agent and yggdrasil run in its namespace before destroy");
    const r = await op.run(["destroy"], { timeout: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(inInstance(), [], "no process of the instance outlives destroy");
  });

  it("a refused login names what the instance's sshd logged (sshdSaid)", () => {
    const dir = join(op.home, "fake-instance");
    spawnSync("mkdir", ["-p", dir]);
    writeFileSync(join(dir, "sshd.log"), "Server listening on 0.0.0.0 port 22.\nUser root not allowed because account is locked\nConnection closed by authenticating user root 198.18.250.1 port 40000 [preauth]\n");
    assert.match(sshdSaid(dir) ?? "", /User root not allowed because account is locked/);
    assert.equal(sshdSaid(join(op.home, "no-such-dir")), undefined);
  });
});
