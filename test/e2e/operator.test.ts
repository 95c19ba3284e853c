import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Lab, waitFor } from "../lab/index.ts";
import { LabCluster } from "../helpers/cluster.ts";
import { BIN, ROOT } from "../helpers/cli.ts";
import { startSshd } from "../helpers/sshd.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (network namespaces)"
    : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v yggdrasil && command -v etcd"]).status !== 0
      ? "needs openssh-server, yggdrasil and etcd"
      : undefined;

/** An operator machine (lab node 3, no member) asks the cluster through SSH to its members. */
describe("from an operator machine", { skip, timeout: 240_000 }, () => {
  let lab: Lab | undefined;
  let c: LabCluster;
  after(async () => lab?.destroy());

  it("members and ssh --info-only go through the first reachable member", async () => {
    lab = await Lab.create({ nodes: 4, topology: "full" });
    c = await new LabCluster(lab).form(3);

    const op = lab.nodes[3]!;
    mkdirSync(join(op.home, ".ssh"), { recursive: true, mode: 0o700 });
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(op.home, ".ssh", "id_ed25519")]);
    const pub = readFileSync(join(op.home, ".ssh", "id_ed25519.pub"), "utf8");
    for (const i of [0, 1, 2]) await startSshd(lab, i, pub, { env: { RAPTIFORMICA_CACHE_DIR: lab.nodes[i]!.cacheDir } });
    mkdirSync(op.cacheDir, { recursive: true, mode: 0o700 });
    // The operator's copy of the config, with where raptiformica lives on these members (config
    // commands on an operator are forwarded to a member, so this is set in the file itself).
    const config = JSON.parse(readFileSync(join(lab.nodes[0]!.cacheDir, "mutable_config.json"), "utf8")) as Record<string, string>;
    config["raptiformica/remote/command"] = join(ROOT, "bin", "raptiformica");
    writeFileSync(join(op.cacheDir, "mutable_config.json"), JSON.stringify(config), { mode: 0o600 });

    const table = await c.rfOk(3, ["members"]);
    assert.equal(table.split("\n").filter((l) => /\balive\b/.test(l)).length, 3, table);
    const info = (await c.rfOk(3, ["ssh", "--info-only"])).trim();
    // An interactive login, with the operator's agent, on a connection of its own.
    assert.match(info, /^ssh -t -A -o ControlPath=none -F \S+ssh_config -p 22 root@198\.18\.0\.\d+$/);

    // Config commands from the operator go to the cluster's KV through a member: written
    // there (a member reads it), read back, and a refusal is the member's own message and exit code.
    await c.rfOk(3, ["config", "set", "app/colour", "blue"]);
    assert.equal((await c.rfOk(1, ["config", "get", "app/colour"])).trim(), "blue");
    assert.equal(await c.rfOk(3, ["config", "get", "app/colour"]), "blue\n");
    assert.equal(await c.rfOk(3, ["config", "show", "app"]), "raptiformica/app/colour = blue\n");
    assert.deepEqual(JSON.parse(await c.rfOk(3, ["config", "show", "--json", "app"])), { "raptiformica/app/colour": "blue" });
    const conflict = await c.rf(3, ["config", "set", "app/colour/shade", "dark"]);
    assert.equal(conflict.exitCode, 1, conflict.stderr);
    assert.match(conflict.stderr, /^raptiformica: Cannot set config key raptiformica\/app\/colour\/shade: raptiformica\/app\/colour already holds a value\./m);
    await c.rfOk(3, ["config", "delete", "app/colour"]);
    const gone = await c.rf(3, ["config", "get", "app/colour"]);
    assert.equal(gone.exitCode, 66, gone.stderr);
    assert.match(gone.stderr, /Config key raptiformica\/app\/colour is not set\./);
    // "Not set" crosses SSH as the member's exit code (66), which is what the operator side
    // checks (ViaMember.forgetNeighbours takes it as "already gone"), not the message.
    const again = await c.rf(3, ["config", "delete", "--recursive", "app/colour"]);
    assert.equal(again.exitCode, 66, again.stderr);
    assert.match(again.stderr, /^raptiformica: Config key raptiformica\/app\/colour is not set; nothing was deleted\./m);
  });

  it("job logs --follow streams a running job's log from the member that ran it, as it is written, and exits as the run ends", async () => {
    assert.ok(lab);
    const t0 = performance.now();
    // The run prints line1, then waits (at most 60 s) for a gate the test opens only once line1
    // has come through the follower: so "as it is written" is checked whatever the machine's
    // load (a slow SSH start could otherwise meet a run that had already printed everything).
    // The lab's members share this machine's filesystem.
    const gate = join(lab.nodes[3]!.dir, "ticker-gate");
    const script = `echo line1; i=0; while [ ! -e ${gate} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; for i in 2 3 4 5 6; do echo line$i; sleep 0.2; done`;
    await c.rfOk(3, ["job", "run", "--name", "ticker", "--", "sh", "-c", script]);
    await waitFor(
      "ticker running",
      async () => (JSON.parse(await c.rfOk(3, ["job", "show", "--json", "ticker"])) as { runs: { outcome: string }[] }).runs.some((r) => r.outcome === "running"),
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    // Its output as it comes, in the file the lab writes a spawned process's stdout and stderr to.
    const follower = lab.spawn(3, [BIN, "job", "logs", "--follow", "ticker"], { env: { ...c.env, RAPTIFORMICA_NODE_NAME: "n3" }, label: "follow-ticker" });
    const exited = new Promise<number | null>((resolve) => follower.once("exit", (code) => resolve(code)));
    const file = join(lab.nodes[3]!.dir, "logs", "follow-ticker.log");
    const seen = () => (existsSync(file) ? readFileSync(file, "utf8") : "");
    const early = await waitFor("line1 through the operator, while the run waits", () => (/^line1$/m.test(seen()) ? seen() : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    assert.doesNotMatch(early, /^line2$/m, "the run has not printed line2 yet");
    const running = JSON.parse(await c.rfOk(3, ["job", "show", "--json", "ticker"])) as { state: string; runs: { outcome: string }[] };
    assert.ok(running.runs.some((r) => r.outcome === "running"), `the run is still going when line1 has arrived: ${JSON.stringify(running)}`);
    writeFileSync(gate, "");
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running after 30 s"), 30_000))]);
    assert.equal(code, 0, seen());
    assert.match(seen(), /^line1\nline2\nline3\nline4\nline5\nline6\n/m, "the whole output, in order");
    const j = JSON.parse(await c.rfOk(3, ["job", "show", "--json", "ticker"])) as { state: string };
    assert.equal(j.state, "succeeded");
    console.error(`# job logs --follow from the operator: first line and the end of the run in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

  it("the first member going away: the next one answers; following a log on it says it cannot be reached", async () => {
    assert.ok(lab);
    // A run on each member: the one n0 ran has its whole log on n0 only.
    await c.rfOk(3, ["job", "run", "--name", "everywhere", "--on", "all", "--", "echo", "hi"]);
    const n0Run = await waitFor(
      "everywhere done",
      async () => {
        const a = JSON.parse(await c.rfOk(3, ["job", "show", "--json", "everywhere"])) as { state: string; runs: { id: string; member: string }[] };
        return a.state === "succeeded" ? a.runs.find((r) => r.member === "n0")?.id : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );
    // The first member goes away (once all three vote, so quorum survives): the next one
    // answers, and reports it failed.
    await waitFor(
      "3 voters",
      async () => (await c.members(0)).members.filter((m) => m.role === "leader" || m.role === "voter").length === 3,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await lab.killNode(0);
    await waitFor(
      "n0 failed, seen from the operator",
      async () => {
        const m = JSON.parse(await c.rfOk(3, ["members", "--json"])) as { members: { name: string; status: string }[] };
        return m.members.find((x) => x.name === "n0")?.status === "failed";
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const cut = await c.rf(3, ["job", "logs", "--follow", "--run", n0Run, "everywhere"], 60_000);
    assert.notEqual(cut.exitCode, 0, cut.stdout);
    assert.match(cut.stderr, new RegExp(`^raptiformica: Cannot follow the log of run ${n0Run} of job everywhere on member n0, the member that ran it \\(its whole log is there only\\): Cannot reach root@198\\.18\\.0\\.\\d+ over SSH`, "m"));
    assert.match(cut.stderr, /without --follow prints the run's last 4 KiB/);
  });
});
