/**
 * `spawn --compute-type netns` from an operator sandbox: real namespaces, real sshd, real
 * yggdrasil and etcd in each instance. Also the SSH failure modes of `slave`, a second `slave`
 * of a member (the update path), `prune` and `destroy`. About 1–2 minutes.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { sandbox, type Sandbox } from "../helpers/cli.ts";
import { remoteCommandLine } from "../../src/remote/quote.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (network namespaces)"
    : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v yggdrasil && command -v etcd && command -v unshare"]).status !== 0
      ? "needs openssh-server, yggdrasil, etcd and util-linux"
      : undefined;

interface Spawned {
  uuid: string;
  host: string;
  meshAddress: string;
}

describe("spawn --compute-type netns", { skip, timeout: 420_000 }, () => {
  let op: Sandbox;
  const spawned: Spawned[] = [];
  const rf = (args: string[], timeout = 240_000) => op.run(args, { env: {}, timeout });
  const onNode = (host: string, argv: string[]) =>
    spawnSync("ssh", ["-F", join(op.cache, "ssh", "ssh_config"), `root@${host}`, "--", remoteCommandLine(argv)], { encoding: "utf8", timeout: 60_000 });

  before(() => {
    op = sandbox();
  });
  after(async () => {
    // Whatever happened, no instance outlives the test.
    const r = await rf(["destroy"]);
    if (r.code !== 0) process.stderr.write(`destroy failed: ${r.stderr}\n`);
    op.cleanup();
  });

  it("three spawns make a 3-member cluster the operator can use", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await rf(["spawn", "--compute-type", "netns"]);
      assert.equal(r.code, 0, r.stderr);
      const [uuid, host, , meshAddress] = r.stdout.trim().split(" ");
      assert.match(uuid ?? "", /^[0-9a-f]{32}$/);
      assert.match(meshAddress ?? "", /^2[0-9a-f]{2}:/);
      spawned.push({ uuid: uuid!, host: host!, meshAddress: meshAddress! });
    }
    // Host keys were pinned from the instances, not learned on first use.
    const known = readFileSync(join(op.cache, "known_hosts"), "utf8");
    for (const s of spawned) assert.match(known, new RegExp(`^${s.host.replace(/\./g, "\\.")} ssh-ed25519 `, "m"));

    await waitFor(
      "3 alive, seen from the operator",
      async () => {
        const r = await rf(["members", "--json"]);
        const m = JSON.parse(r.stdout) as { members: { status: string; meshAddress: string }[] };
        return spawned.every((s) => m.members.some((x) => x.meshAddress === s.meshAddress && x.status === "alive"));
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );

    // config from the operator goes to the cluster, and a node reads it.
    const set = await rf(["config", "set", "demo/greeting", "hello"]);
    assert.equal(set.code, 0, set.stderr);
    const got = onNode(spawned[2]!.host, ["/usr/etc/raptiformica/bin/raptiformica", "config", "get", "demo/greeting"]);
    assert.equal(got.stdout.trim(), "hello", got.stderr);

    // Every member reaches every other's mesh address.
    for (const a of spawned) {
      for (const b of spawned) {
        if (a === b) continue;
        await waitFor(`${a.host} pings ${b.meshAddress}`, async () => onNode(a.host, ["ping", "-6", "-c1", "-W2", b.meshAddress]).status === 0, {
          timeoutMs: 30_000,
          intervalMs: 500,
        });
      }
    }
    // Every member's sshd answers on its mesh address, from another member (over the mesh).
    for (const [a, b] of [
      [spawned[0]!, spawned[1]!],
      [spawned[2]!, spawned[0]!],
    ] as const) {
      const banner = onNode(a.host, ["timeout", "5", "bash", "-c", 'exec 3<>"/dev/tcp/$1/22" && head -c 4 <&3', "bash", b.meshAddress]);
      assert.equal(banner.stdout, "SSH-", `${a.host} → sshd on [${b.meshAddress}]:22: ${banner.stderr}`);
    }
    // Each instance has its own root home and install: the node state is not the operator's.
    const dirs = readdirSync(join(op.cache, "var", "machines", "netns", "headless"));
    assert.equal(dirs.length, 3);
    for (const d of dirs) assert.ok(existsSync(join(op.cache, "var", "machines", "netns", "headless", d, "root", ".raptiformica.d", "node")));
  });

  it("slave on a member again converges: same address, still a member", async () => {
    const s = spawned[1]!;
    const r = await rf(["slave", s.host]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`is a member: ${s.meshAddress}`));
    const m = JSON.parse((await rf(["members", "--json"])).stdout) as { members: { status: string }[] };
    assert.equal(m.members.filter((x) => x.status === "alive").length, 3);
  });

  it("join: a machine joins through a member and is registered under its real address", async () => {
    const r = await rf(["spawn", "--compute-type", "netns", "--no-assimilate"]);
    assert.equal(r.code, 0, r.stderr);
    const [uuid, host] = r.stdout.trim().split(" ");
    // The member must let the joining machine in (its operator would add the key).
    const key = onNode(host!, ["sh", "-c", 'mkdir -p .raptiformica.d/ssh && touch .raptiformica.d/.raptiformica-cache && ssh-keygen -q -t ed25519 -N "" -f .raptiformica.d/ssh/id_ed25519 && cat .raptiformica.d/ssh/id_ed25519.pub']);
    assert.equal(key.status, 0, key.stderr);
    const memberDir = join(op.cache, "var", "machines", "netns", "headless", spawned[0]!.uuid);
    writeFileSync(join(memberDir, "authorized_keys"), readFileSync(join(memberDir, "authorized_keys"), "utf8") + key.stdout);

    const joined = onNode(host!, ["/usr/etc/raptiformica/bin/raptiformica", "join", spawned[0]!.host]);
    assert.equal(joined.status, 0, joined.stderr);
    assert.match(joined.stderr, new RegExp(`registered as ${host!.replace(/\./g, "\\.")}`));
    const id = JSON.parse(onNode(host!, ["/usr/etc/raptiformica/bin/raptiformica", "identity", "--json"]).stdout) as { meshAddress: string };
    await waitFor(
      "the joined machine alive under its real address",
      async () => {
        const m = JSON.parse((await rf(["members", "--json"])).stdout) as { members: { status: string; meshAddress: string; host?: string }[] };
        return m.members.some((x) => x.meshAddress === id.meshAddress && x.status === "alive" && x.host === host);
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    spawned.push({ uuid: uuid!, host: host!, meshAddress: id.meshAddress });

    // The member's key was let in for the join only: gone from the joined machine now.
    const memberKey = onNode(spawned[0]!.host, ["cat", ".raptiformica.d/ssh/id_ed25519.pub"]).stdout.trim().split(/\s+/)[1];
    assert.ok(memberKey, "the member has a key");
    const authorized = onNode(host!, ["sh", "-c", "cat .ssh/authorized_keys 2>/dev/null || true"]);
    assert.equal(authorized.status, 0, authorized.stderr);
    assert.ok(!authorized.stdout.includes(memberKey!), `the member's key is still authorized on the joined machine:\n${authorized.stdout}`);
  });

  it("slave fails clearly: unreachable host, refused key, changed host key", async () => {
    const unreachable = await rf(["slave", "198.18.250.251"], 60_000);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /Cannot reach root@198\.18\.250\.251 over SSH/);

    // A machine that does not let our key in. The master connection of earlier commands (kept
    // for a minute for reuse) is closed first: it was authenticated when the key was still in.
    const s = spawned[0]!;
    const closeMaster = () => spawnSync("ssh", ["-F", join(op.cache, "ssh", "ssh_config"), "-O", "exit", `root@${s.host}`], { timeout: 10_000 });
    closeMaster();
    const dir = join(op.cache, "var", "machines", "netns", "headless", s.uuid);
    const keys = readFileSync(join(dir, "authorized_keys"), "utf8");
    writeFileSync(join(dir, "authorized_keys"), "");
    try {
      const refused = await rf(["slave", s.host], 60_000);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`SSH to root@${s.host.replace(/\./g, "\\.")} was refused`));
    } finally {
      writeFileSync(join(dir, "authorized_keys"), keys);
    }

    // A host whose key is not the pinned one: refused, with how to forget it.
    const knownPath = join(op.cache, "known_hosts");
    const known = readFileSync(knownPath, "utf8");
    const other = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(op.home, "otherkey")]);
    assert.equal(other.status, 0);
    const fake = readFileSync(join(op.home, "otherkey.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    closeMaster();
    writeFileSync(knownPath, known.replace(new RegExp(`^${s.host.replace(/\./g, "\\.")} .*$`, "m"), `${s.host} ${fake}`));
    try {
      const changed = await rf(["slave", s.host], 60_000);
      assert.equal(changed.code, 1);
      assert.match(changed.stderr, /is not the one raptiformica recorded/);
      assert.match(changed.stderr, /ssh-keygen -R/);
    } finally {
      writeFileSync(knownPath, known);
    }
  });

  it("prune removes a dead instance and its neighbour entry; destroy removes the rest", async () => {
    const dead = spawned[2]!;
    const ns = readFileSync(join(op.cache, "var", "machines", "netns", "headless", dead.uuid, "netns"), "utf8").trim();
    const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout.trim().split(/\s+/).filter(Boolean);
    assert.ok(pids.length > 0);
    spawnSync("kill", ["-9", ...pids]);

    const pruned = await rf(["prune"]);
    assert.equal(pruned.code, 0, pruned.stderr);
    // The joined machine was spawned without assimilation: it carries no uuid, so prune finds only the dead one.
    assert.match(pruned.stderr, /pruned 1 instance\(s\), 1 neighbour entry; 3 instance\(s\) alive/);
    assert.ok(!existsSync(join(op.cache, "var", "machines", "netns", "headless", dead.uuid)));
    const shown = await rf(["config", "show", "meshnet/neighbours", "--json"]);
    const neighbours = JSON.parse(shown.stdout) as Record<string, string>;
    const uuids = Object.entries(neighbours).filter(([k]) => k.endsWith("/uuid")).map(([, v]) => v);
    assert.deepEqual(uuids.sort(), [spawned[0]!.uuid, spawned[1]!.uuid].sort());
    assert.ok(Object.values(neighbours).includes(spawned[3]!.meshAddress), "the joined (uuid-less) member stays");
    assert.ok(!Object.values(neighbours).includes(dead.meshAddress));

    const destroyed = await rf(["destroy"]);
    assert.equal(destroyed.code, 0, destroyed.stderr);
    assert.match(destroyed.stderr, /destroyed 3 instance\(s\)/);
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    for (const s of spawned) {
      const nsName = `rfn-${s.uuid.slice(0, 8)}`;
      assert.ok(!left.includes(nsName), `${nsName} is still there`);
    }
    assert.ok(!existsSync(join(op.cache, "mutable_config.json")));
  });
});
