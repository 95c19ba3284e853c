import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { Lab } from "../lab/index.ts";
import { ROOT } from "../helpers/cli.ts";
import { LAB_PATH, startSshd } from "../helpers/sshd.ts";
import type { SshSettings, SshTarget } from "../../src/remote/ssh.ts";

const skip =
  process.getuid?.() !== 0 ? "needs root (network namespaces)" : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v ssh"]).status !== 0 ? "needs openssh-server and openssh-client" : undefined;

/** The SSH layer against real sshd processes, with the operator in lab node 0. */
describe("SSH layer", { skip, timeout: 120_000 }, () => {
  let lab: Lab;
  let settings: SshSettings;
  let pub = "";

  async function op(target: SshTarget, argv: string[], s: SshSettings = settings): Promise<{ ok: boolean; stdout?: string; error?: string; exitCode?: number }> {
    const r = await lab.exec(0, [process.execPath, "--import", pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href, join(ROOT, "test/helpers/ssh-op.ts"), JSON.stringify({ settings: s, target, argv })], {
      env: { NODE_PATH: join(ROOT, "node_modules") },
      timeoutMs: 60_000,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  before(async () => {
    // 0 = operator, 1 = a host it reaches, 2 = a host only 1 reaches (line topology).
    lab = await Lab.create({ nodes: 3, topology: "line" });
    const dir = join(lab.nodes[0]!.dir, "op");
    spawnSync("mkdir", ["-p", dir]);
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
    pub = readFileSync(join(dir, "id.pub"), "utf8");
    settings = { knownHosts: join(dir, "known_hosts"), stateDir: dir, identities: [join(dir, "id")] };
    await startSshd(lab, 1, pub);
    await startSshd(lab, 2, pub);
  });
  after(async () => lab?.destroy());

  it("runs argv remotely, quoting every word, and records the host key on first use", async () => {
    const r = await op({ host: lab.addressOf(1, 0), port: 22 }, ["printf", "%s|", "a b", "it's", "$(touch /tmp/pwned)", "*"]);
    assert.ok(r.ok, r.error);
    assert.equal(r.stdout, "a b|it's|$(touch /tmp/pwned)|*|");
    assert.match(readFileSync(settings.knownHosts, "utf8"), new RegExp(lab.addressOf(1, 0).replace(/\./g, "\\.")));
  });

  it("gives a lab node's sessions the install on PATH, as a machine sharing its host's /usr has it (slave then writes no launcher)", async () => {
    const r = await op({ host: lab.addressOf(1, 0), port: 22 }, ["sh", "-c", 'printf %s "$PATH"']);
    assert.ok(r.ok, r.error);
    assert.equal(r.stdout, LAB_PATH);
  });

  it("reaches a host behind another through ProxyJump, with the same host-key policy", async () => {
    const r = await op({ host: lab.addressOf(2, 1), port: 22, via: [{ host: lab.addressOf(1, 0), port: 22 }] }, ["hostname"]);
    assert.ok(r.ok, r.error);
    assert.match(readFileSync(settings.knownHosts, "utf8"), new RegExp(lab.addressOf(2, 1).replace(/\./g, "\\.")));
  });

  it("refuses a changed host key, naming the host and how to forget it", async () => {
    await lab.killNode(2);
    await startSshd(lab, 2, pub, { regenerateHostKey: true });
    const r = await op({ host: lab.addressOf(2, 1), port: 22, via: [{ host: lab.addressOf(1, 0), port: 22 }] }, ["true"]);
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", new RegExp(`host key of root@${lab.addressOf(2, 1).replace(/\./g, "\\.")}.*ssh-keygen -R`));
  });

  it("says clearly when a host is unreachable or refuses the key", async () => {
    const down = await op({ host: lab.addressOf(1, 0), port: 2222 }, ["true"]);
    assert.equal(down.ok, false);
    assert.match(down.error ?? "", /Cannot reach root@198\.19\.0\.2:2222 over SSH/);
    // Another cache dir (so no master connection of the first is reused) with a key nobody accepts.
    const other = { ...settings, stateDir: join(lab.nodes[0]!.dir, "op-other"), identities: [join(lab.nodes[0]!.dir, "op", "nokey")] };
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other.identities[0]!]);
    const refused = await op({ host: lab.addressOf(1, 0), port: 22 }, ["true"], other);
    assert.equal(refused.ok, false);
    assert.match(refused.error ?? "", /SSH to root@198\.19\.0\.2 was refused/);
  });
});
