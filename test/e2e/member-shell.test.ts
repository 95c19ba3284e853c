/**
 * A member as a user meets it: two `spawn --compute-type netns` members (real slave, sshd,
 * yggdrasil, etcd), reached with `raptiformica ssh NODE [-- COMMAND]` from an operator whose
 * keys are in an ssh-agent. `raptiformica` is a command in the member's shell; the interactive
 * login forwards the agent and a command does not. About a minute.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execa } from "execa";
import { waitFor } from "../lab/index.ts";
import { BIN, sandbox, type CliResult, type Sandbox } from "../helpers/cli.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (network namespaces)"
    : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v yggdrasil && command -v etcd && command -v unshare && command -v ssh-agent"]).status !== 0
      ? "needs openssh-server, openssh-client (ssh-agent), yggdrasil, etcd and util-linux"
      : undefined;

interface Member {
  name: string;
  meshAddress: string;
}

describe("raptiformica ssh and the member's shell", { skip, timeout: 300_000 }, () => {
  let op: Sandbox;
  let agentPid = 0;
  let sock = "";
  const members: Member[] = [];
  const launcherBefore = existsSync("/usr/local/bin/raptiformica");
  /**
   * `raptiformica ARGS` with `input` on stdin (not a terminal: ssh runs the login shell on it).
   * Empty by default, so a login that was not meant to happen ends at once instead of waiting.
   */
  async function rfInput(args: string[], input: string, timeout = 60_000): Promise<CliResult> {
    const r = await execa(BIN, args, { env: { PATH: process.env["PATH"], HOME: op.home, LANG: "C.UTF-8", SSH_AUTH_SOCK: sock }, extendEnv: false, cwd: op.home, reject: false, timeout, input });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  const rf = (args: string[], timeout = 60_000) => rfInput(args, "", timeout);

  before(async () => {
    op = sandbox();
    // The operator's key lives only in its agent: the instances let it in, and a forwarded
    // agent shows it on a member.
    mkdirSync(join(op.home, "agent"), { mode: 0o700 });
    sock = join(op.home, "agent", "sock");
    const agent = spawnSync("ssh-agent", ["-a", sock, "-s"], { encoding: "utf8" });
    agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1] ?? 0);
    assert.ok(agentPid > 0, agent.stderr);
    const keyFile = join(op.home, "agent", "key");
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "operator-in-agent", "-f", keyFile]);
    const added = spawnSync("ssh-add", [keyFile], { env: { SSH_AUTH_SOCK: sock }, encoding: "utf8" });
    assert.equal(added.status, 0, added.stderr);

    for (let i = 0; i < 2; i++) {
      const r = await rf(["spawn", "--compute-type", "netns"], 240_000);
      assert.equal(r.code, 0, r.stderr);
    }
    await waitFor(
      "2 members alive, seen from the operator",
      async () => {
        const r = await rf(["members", "--json"], 30_000);
        if (r.code !== 0) return false;
        const m = JSON.parse(r.stdout) as { members: { name: string; status: string; meshAddress: string }[] };
        members.splice(0, members.length, ...m.members.map((x) => ({ name: x.name, meshAddress: x.meshAddress })));
        return m.members.length === 2 && m.members.every((x) => x.status === "alive");
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
  });
  after(async () => {
    if (op) {
      const r = await rf(["destroy"], 240_000);
      if (r.code !== 0) process.stderr.write(`destroy failed: ${r.stderr}\n`);
      op.cleanup();
    }
    if (agentPid > 0) process.kill(agentPid);
  });

  it("runs `-- COMMAND` on the member NODE names and exits with its status, every word passed as it is", async () => {
    const [a] = members as [Member, Member];
    let r = await rf(["ssh", a.name, "--", "sh", "-c", 'hostname; echo "to stderr" >&2; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout.trim(), a.name, "the member's name is its hostname");
    assert.match(r.stderr, /to stderr/);
    r = await rf(["ssh", a.meshAddress, "--", "printf", "%s|", "a b", "it's", "$(touch /tmp/rf-pwned)", "*", "--info-only"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "a b|it's|$(touch /tmp/rf-pwned)|*|--info-only|");
  });

  it("without NODE, `-- COMMAND` runs on the first reachable member", async () => {
    const r = await rf(["ssh", "--", "hostname"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      members.some((m) => m.name === r.stdout.trim()),
      `ran on ${JSON.stringify(r.stdout)}`,
    );
  });

  it("names a member by a unique prefix of its name or mesh address; refuses an ambiguous or unknown one, listing members", async () => {
    const [a, b] = members as [Member, Member];
    let n = 1;
    while (b.name.startsWith(a.name.slice(0, n))) n++;
    let r = await rf(["ssh", a.name.slice(0, n), "--", "hostname"]);
    assert.equal(r.stdout.trim(), a.name, r.stderr);
    let k = 1;
    while (b.meshAddress.startsWith(a.meshAddress.slice(0, k))) k++;
    r = await rf(["ssh", a.meshAddress.slice(0, k), "--", "hostname"]);
    assert.equal(r.stdout.trim(), a.name, r.stderr);

    // Both names start with the netns prefix, both mesh addresses with "2".
    for (const q of [a.name.slice(0, 4), "2"]) {
      r = await rf(["ssh", q, "--", "hostname"]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "", "nothing ran");
      assert.match(r.stderr, new RegExp(`"${q}" names 2 members`));
      for (const m of members) assert.ok(r.stderr.includes(m.name) && r.stderr.includes(m.meshAddress), r.stderr);
    }
    r = await rf(["ssh", "no-such-member", "--", "hostname"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No member is named "no-such-member"/);
    for (const m of members) assert.ok(r.stderr.includes(m.name), r.stderr);
  });

  it("forwards the operator's agent to an interactive login (unless --no-forward-agent), never to a command", async () => {
    const [a] = members as [Member, Member];
    const probe = 'echo "sock=${SSH_AUTH_SOCK:-}"; ssh-add -l 2>&1; exit 0\n';
    let r = await rfInput(["ssh", a.name], probe);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sock=\/\S+/, "the login has a forwarded agent");
    assert.match(r.stdout, /operator-in-agent/, "holding the operator's key");
    const info = await rf(["ssh", a.name, "--info-only"]);
    assert.match(info.stdout, /^ssh -t -A /);

    r = await rfInput(["ssh", "--no-forward-agent", a.name], probe);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sock=\n/);

    r = await rf(["ssh", a.name, "--", "printenv", "SSH_AUTH_SOCK"]);
    assert.equal(r.code, 1, "printenv finds no SSH_AUTH_SOCK");
    assert.equal(r.stdout, "");
  });

  it("`raptiformica` is a command in the member's shell, from the member's own install", async () => {
    const [a] = members as [Member, Member];
    // Typed in the login shell, as a user does after `raptiformica ssh`.
    const r = await rfInput(["ssh", a.name], "command -v raptiformica; raptiformica members --json\n");
    assert.equal(r.code, 0, r.stderr);
    const [path, ...json] = r.stdout.split("\n");
    assert.equal(path, "/usr/etc/raptiformica/bin/raptiformica", "the instance's own install");
    const seen = JSON.parse(json.join("\n")) as { members: { name: string }[] };
    assert.deepEqual(seen.members.map((m) => m.name).sort(), members.map((m) => m.name).sort());
    // And a command run over SSH finds it too.
    const v = await rf(["ssh", a.name, "--", "raptiformica", "--version"]);
    assert.equal(v.code, 0, v.stderr);
    // The instances share /usr with this machine: slave put no launcher into it.
    assert.equal(existsSync("/usr/local/bin/raptiformica"), launcherBefore, "this machine's /usr/local/bin is left alone");
  });
});
