import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Lab, waitFor } from "../lab/index.ts";
import { LabCluster } from "../helpers/cluster.ts";
import { ROOT } from "../helpers/cli.ts";
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
  after(async () => lab?.destroy());

  it("members and ssh --info-only go through the first reachable member", async () => {
    lab = await Lab.create({ nodes: 4, topology: "full" });
    const c = new LabCluster(lab);
    await c.first(0);
    await c.join(1);
    await c.join(2);
    await c.waitAlive(0, 3, 60_000);

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
    assert.match(info, /^ssh -F \S+ssh_config -p 22 root@198\.18\.0\.\d+$/);

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
  });
});
