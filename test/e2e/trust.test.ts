/**
 * The trust model, as a hostile member and a careless config would test it: bare netns
 * machines (own network/mount namespaces, own sshd, own /root and /usr/etc/raptiformica) with
 * real yggdrasil and etcd, two operator sandboxes with a cluster each.
 *
 * - a member that reports code (an `after_assimilate` hook, another launcher) gets none of it
 *   run or kept on the operator; its data is learnt;
 * - a host slaved with --no-assimilate gets no cluster CA;
 * - slave writes only into raptiformica's own, marked install dir, whatever
 *   `raptiformica/remote/command` says, and refuses a foreign one;
 * - a push (rsync or tar) replaces only what it copies, as root's files;
 * - slave, deploy and join refuse a member of another cluster, and neither operator loses its own;
 * - an operator whose member moved to another cluster reads nothing from it and writes nothing to it.
 *
 * About 1 minute.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sandbox, type Sandbox } from "../helpers/cli.ts";
import { Machines, writeInventory, type Machine } from "../helpers/machines.ts";
import { remoteCommandLine } from "../../src/remote/quote.ts";
import { CACHE_MARKER } from "../../src/config/paths.ts";
import { pushTree } from "../../src/remote/transfer.ts";
import { commitFiles } from "../helpers/gitrepo.ts";

const skip =
  process.getuid?.() !== 0
    ? "needs root (network namespaces)"
    : spawnSync("sh", ["-c", "command -v /usr/sbin/sshd && command -v yggdrasil && command -v etcd && command -v unshare && command -v flock"]).status !== 0
      ? "needs openssh-server, yggdrasil, etcd and util-linux"
      : undefined;

const RF = "/usr/etc/raptiformica/bin/raptiformica";
const HOOK = "raptiformica/platform/default/hooks/after_assimilate/evil";
const CA_KEY = "raptiformica/meshnet/etcd/ca_key";
const CA_CERT = "raptiformica/meshnet/etcd/ca_cert";

describe("trust boundaries", { skip, timeout: 420_000 }, () => {
  let a: Sandbox;
  let b: Sandbox;
  let machines: Machines;
  let m1: Machine, m2: Machine, m3: Machine;
  const onNode = (m: Machine, argv: string[], input?: string) =>
    spawnSync(
      "ssh",
      ["-i", join(a.cache, "ssh", "id_ed25519"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", `root@${m.address}`, "--", remoteCommandLine(argv)],
      { encoding: "utf8", timeout: 60_000, ...(input !== undefined ? { input } : {}) },
    );
  const mapping = (sb: Sandbox) => JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
  const marker = () => join(a.home, "pwned");

  before(async () => {
    a = sandbox();
    b = sandbox();
    machines = new Machines(a.cache);
    // Operator B uses the same SSH key (the machines let it in), with its own known_hosts and cluster.
    cpSync(join(a.cache, "ssh"), join(b.cache, "ssh"), { recursive: true });
    // A cache dir raptiformica keeps state in carries its mark (it refuses a folder that has files but no mark).
    writeFileSync(join(b.cache, CACHE_MARKER), "", { mode: 0o600 });
    [m1, m2, m3] = (await machines.startMany(3, 3)) as [Machine, Machine, Machine];
  });
  after(async () => {
    await machines?.cleanup();
    a?.cleanup();
    b?.cleanup();
  });

  it("a member's code is never run or kept on the operator; its data is learnt", async () => {
    const first = await a.run(["slave", m1.address], { timeout: 240_000 });
    assert.equal(first.code, 0, first.stderr);
    // The member (any writer of the KV) plants code for the operator, and some data.
    for (const [k, v] of [
      [`${HOOK}/predicate`, "true"],
      [`${HOOK}/command`, `touch ${marker()}`],
      ["raptiformica/remote/command", "/tmp/elsewhere/bin/raptiformica"],
      ["app/from_member", "yes"],
    ] as const) {
      const r = onNode(m1, [RF, "config", "set", k, v]);
      assert.equal(r.status, 0, r.stderr);
    }

    // The operator's copy also names a member long gone (first in key order): slaving a live
    // member again still works, the member registering itself.
    const cfgPath = join(a.cache, "mutable_config.json");
    const gone = `raptiformica/meshnet/neighbours/${"00".repeat(32)}`;
    writeFileSync(cfgPath, JSON.stringify({ ...mapping(a), [`${gone}/host`]: "198.18.250.250", [`${gone}/mesh_address`]: "200::1", [`${gone}/ssh_port`]: "22" }), { mode: 0o600 });
    const again = await a.run(["slave", m1.address], { timeout: 240_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!existsSync(marker()), "the member's after_assimilate hook ran on the operator");
    assert.match(again.stderr, /code keys that differ from this machine's/);
    const learned = mapping(a);
    assert.equal(learned["raptiformica/app/from_member"], "yes", "data is learnt");
    assert.ok(!Object.keys(learned).some((k) => k.startsWith(HOOK)), "the hook is not kept");
    assert.equal(learned["raptiformica/remote/command"], undefined, "the launcher is not taken");
    assert.ok(learned[CA_KEY], "the operator knows the CA (it pushes it to new members)");

    // What a member prints on a forwarded `config` is shown escaped, whatever launcher it runs.
    const wrapper = '#!/bin/sh\nprintf "\\033]0;OWNED\\007 \\033[31mred\\n" >&2\nexec /usr/etc/raptiformica/bin/raptiformica.real "$@"\n';
    let r = onNode(m1, ["sh", "-c", "cd /usr/etc/raptiformica/bin && mv raptiformica raptiformica.real && cat > raptiformica && chmod 755 raptiformica"], wrapper);
    assert.equal(r.status, 0, r.stderr);
    try {
      const shown = await a.run(["config", "show", "app"]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stderr, /\\u001b\]0;OWNED/, "the member's output arrived, escaped");
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u0009\u000b-\u001f]/.test(shown.stderr + shown.stdout), `raw control characters relayed: ${JSON.stringify(shown.stderr)}`);
    } finally {
      r = onNode(m1, ["sh", "-c", "cd /usr/etc/raptiformica/bin && mv raptiformica.real raptiformica"]);
      assert.equal(r.status, 0, r.stderr);
    }
  });

  it("a host slaved with --no-assimilate gets no cluster CA", async () => {
    const r = await a.run(["slave", m2.address, "--no-assimilate", "--no-provision"], { timeout: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const cfg = onNode(m2, ["cat", ".raptiformica.d/mutable_config.json"]);
    assert.equal(cfg.status, 0, cfg.stderr);
    const pushed = JSON.parse(cfg.stdout) as Record<string, string>;
    assert.ok(pushed["raptiformica/meshnet/etcd/max_voters"], "it got the config");
    assert.equal(pushed[CA_KEY], undefined, "it got the CA's private key");
    assert.equal(pushed[CA_CERT], undefined);
  });

  it("slave writes only into its own install dir, whatever remote/command says, and refuses a foreign one", async () => {
    // A directory that is not raptiformica's where the install goes: refused, left alone.
    let r = onNode(m3, ["sh", "-c", "mkdir -p /usr/etc/raptiformica/bin && echo mine > /usr/etc/raptiformica/bin/keep && mkdir -p /root/victim/bin && echo mine > /root/victim/bin/keep"]);
    assert.equal(r.status, 0, r.stderr);
    const refused = await a.run(["slave", m3.address, "--no-assimilate", "--no-provision"], { timeout: 120_000 });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /Refusing to copy into \/usr\/etc\/raptiformica on root@198\.18\.250\.\d+: it holds files raptiformica did not put there/);
    assert.equal(onNode(m3, ["cat", "/usr/etc/raptiformica/bin/keep"]).stdout.trim(), "mine");
    assert.equal(onNode(m3, ["test", "-e", "/usr/etc/raptiformica/dist"]).status, 1, "nothing was copied");

    // The launcher set elsewhere (in the operator's own config): the push still goes to the install dir.
    r = onNode(m3, ["find", "/usr/etc/raptiformica", "-mindepth", "1", "-delete"]);
    assert.equal(r.status, 0, r.stderr);
    const cfgPath = join(a.cache, "mutable_config.json");
    const saved = readFileSync(cfgPath, "utf8");
    writeFileSync(cfgPath, JSON.stringify({ ...mapping(a), "raptiformica/remote/command": "/root/victim/bin/raptiformica" }), { mode: 0o600 });
    try {
      await a.run(["slave", m3.address, "--no-assimilate", "--no-provision"], { timeout: 120_000 });
    } finally {
      writeFileSync(cfgPath, saved, { mode: 0o600 });
    }
    assert.equal(onNode(m3, ["cat", "/root/victim/bin/keep"]).stdout.trim(), "mine", "the push touched another directory");
    const owned = onNode(m3, ["sh", "-c", "stat -c '%u:%g %A' /usr/etc/raptiformica/dist/raptiformica.mjs && ls -A /usr/etc/raptiformica"]);
    assert.equal(owned.status, 0, owned.stderr);
    assert.match(owned.stdout, /^0:0 -rw-r--r--/, "pushed files are root's and not writable by others");
    assert.match(owned.stdout, /\.raptiformica-managed/);
  });

  it("a provisioner's source is copied into /usr/etc/<name> and its bootstrap runs there", async () => {
    const repo = join(a.home, "prov-src");
    commitFiles(repo, { "hello.txt": "from the source\n" });
    const mod = join(a.home, "qa-server");
    mkdirSync(mod, { recursive: true });
    writeFileSync(join(mod, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", server: { qasrv: { qaprov: { source: repo, bootstrap: "cat hello.txt > ran.txt" } } } }));
    const inst = await a.run(["install", mod]);
    assert.equal(inst.code, 0, inst.stderr);
    const r = await a.run(["slave", m3.address, "--no-assimilate", "--server-type", "qasrv"], { timeout: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(onNode(m3, ["cat", "/usr/etc/qaprov/ran.txt"]).stdout, "from the source\n");
    assert.equal(onNode(m3, ["test", "-e", "/usr/etc/qaprov/.raptiformica-managed"]).status, 0);
  });

  for (const rsync of [true, false]) {
    it(`a push (${rsync ? "rsync" : "tar"}) replaces only the entries it copies, as root's, not writable by others`, async () => {
      // What the operator pushes may belong to anyone here, with any mode.
      const from = join(a.home, `push-${rsync}`);
      mkdirSync(join(from, "modules", "m"), { recursive: true });
      writeFileSync(join(from, "modules", "m", "raptiformica.json"), "{}", { mode: 0o666 });
      chownSync(join(from, "modules", "m", "raptiformica.json"), 1000, 1000);
      chmodSync(join(from, "modules", "m", "raptiformica.json"), 0o666);
      const dir = `.push-${rsync}`;
      let r = onNode(m3, ["sh", "-c", `mkdir -p ${dir}/node ${dir}/modules/old && echo id > ${dir}/node/identity && echo x > ${dir}/mutable_config.json`]);
      assert.equal(r.status, 0, r.stderr);
      const settings = { knownHosts: join(a.home, "push-known"), stateDir: join(a.home, "push-ssh"), identities: [join(a.cache, "ssh", "id_ed25519")] };
      mkdirSync(settings.stateDir, { recursive: true });
      await pushTree(settings, { host: m3.address, port: 22 }, { from, entries: ["modules"], to: dir, legacyMarks: ["mutable_config.json", "node"] }, rsync);
      r = onNode(m3, ["sh", "-c", `cat ${dir}/node/identity; ls ${dir}/modules; stat -c '%u:%g %a' ${dir}/modules/m/raptiformica.json`]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["id", "m", "0:0 644"], "siblings kept, the entry replaced, files root's and not writable by others");
    });
  }

  it("slave, deploy and join refuse a member of another cluster; no operator switches or loses its own", async () => {
    const own = await b.run(["slave", m2.address], { timeout: 240_000 });
    assert.equal(own.code, 0, own.stderr);
    const caA = mapping(a)[CA_CERT];
    const caB = mapping(b)[CA_CERT];
    assert.ok(caA && caB && caA !== caB, "two clusters");

    // B's member may log in to A's member (what `join` from there needs).
    const key = onNode(m2, ["sh", "-c", 'k=.raptiformica.d/ssh/id_ed25519; [ -f "$k" ] || { mkdir -p .raptiformica.d/ssh && touch .raptiformica.d/.raptiformica-cache && ssh-keygen -q -t ed25519 -N "" -f "$k"; }; cat "$k.pub"']);
    assert.equal(key.status, 0, key.stderr);
    writeFileSync(join(m1.dir, "authorized_keys"), readFileSync(join(m1.dir, "authorized_keys"), "utf8") + key.stdout);

    // A's member with its config moved away (the README's advice for a corrupt one) is still
    // known by its node's CA file: refused before anything is pushed, so it never gets B's CA.
    let r = onNode(m1, ["mv", ".raptiformica.d/mutable_config.json", ".raptiformica.d/mutable_config.json.away"]);
    assert.equal(r.status, 0, r.stderr);
    try {
      const moved = await b.run(["slave", m1.address], { timeout: 120_000 });
      assert.equal(moved.code, 1, moved.stderr);
      assert.match(moved.stderr, /is a member of cluster [0-9a-f]{16}, but this machine manages cluster/);
      assert.equal(onNode(m1, ["test", "-e", ".raptiformica.d/mutable_config.json"]).status, 1, "B pushed its config");
      // join reads the member as slave does (its node's CA first): refused too, before the tunnel.
      const joinedMoved = onNode(m2, [RF, "join", m1.address]);
      assert.equal(joinedMoved.status, 1, joinedMoved.stderr);
      assert.match(joinedMoved.stderr, new RegExp(`This machine is a member of cluster [0-9a-f]{16}, but root@${m1.address.replace(/\./g, "\\.")} is a member of cluster [0-9a-f]{16}`));
      assert.doesNotMatch(joinedMoved.stderr, /reverse tunnel|slaves this machine/);
    } finally {
      r = onNode(m1, ["mv", ".raptiformica.d/mutable_config.json.away", ".raptiformica.d/mutable_config.json"]);
      assert.equal(r.status, 0, r.stderr);
    }

    const takeover = await b.run(["slave", m1.address], { timeout: 120_000 });
    assert.equal(takeover.code, 1, takeover.stderr);
    assert.match(takeover.stderr, new RegExp(`root@${m1.address.replace(/\./g, "\\.")} is a member of cluster [0-9a-f]{16}, but this machine manages cluster [0-9a-f]{16}`));
    assert.match(takeover.stderr, /raptiformica clean/);
    assert.equal(mapping(b)[CA_CERT], caB, "B still manages its own cluster");
    const members = await b.run(["members", "--json"]);
    assert.equal(members.code, 0, members.stderr);
    const listed = JSON.parse(members.stdout) as { members: { host?: string }[] };
    assert.deepEqual(listed.members.map((m) => m.host), [m2.address]);

    // join from B's member through A's member: refused before the tunnel, naming both.
    const joined = onNode(m2, [RF, "join", m1.address]);
    assert.equal(joined.status, 1, joined.stderr);
    assert.match(joined.stderr, new RegExp(`This machine is a member of cluster [0-9a-f]{16}, but root@${m1.address.replace(/\./g, "\\.")} is a member of cluster [0-9a-f]{16}`));

    const inventory = writeInventory(a.home, "inventory.json", [{ dst: m2.address }]);
    const deployed = await a.run(["deploy", inventory, "--json"], { timeout: 120_000 });
    assert.equal(deployed.code, 1, deployed.stderr);
    const report = JSON.parse(deployed.stdout) as { hosts: { ok: boolean; error?: string }[] };
    assert.match(report.hosts[0]?.error ?? "", /is a member of cluster [0-9a-f]{16}, but this machine manages cluster/);
    assert.equal(mapping(a)[CA_CERT], caA, "A still manages its own cluster");
  });
  it("an operator never reads from or writes to its member once it is in another cluster; values starting with - are values", async () => {
    // B's only member leaves its cluster and is slaved into A's.
    const cleaned = onNode(m2, [RF, "clean"]);
    assert.equal(cleaned.status, 0, cleaned.stderr);
    const moved = await a.run(["slave", m2.address], { timeout: 240_000 });
    assert.equal(moved.code, 0, moved.stderr);

    const refusal = new RegExp(`No member of cluster [0-9a-f]{16} \\(the cluster this machine manages\\) answered[\\s\\S]*root@${m2.address.replace(/\./g, "\\.")}(:\\d+)?: it is now a member of cluster [0-9a-f]{16}`);
    const members = await b.run(["members"]);
    assert.equal(members.code, 1, members.stdout);
    assert.match(members.stderr, refusal);
    assert.equal(members.stdout, "", "no member list of the other cluster");
    const set = await b.run(["config", "set", "app/from_b", "yes"]);
    assert.equal(set.code, 1, set.stderr);
    assert.match(set.stderr, refusal);
    assert.match(set.stderr, /raptiformica slave HOST[\s\S]*raptiformica destroy/);
    const got = await b.run(["config", "get", "app/from_member"]);
    assert.equal(got.code, 1, got.stdout);
    assert.match(got.stderr, refusal);
    const ssh = await b.run(["ssh", "--info-only"]);
    assert.equal(ssh.code, 1, ssh.stdout);
    assert.match(ssh.stderr, refusal);
    const there = await a.run(["config", "get", "app/from_b"]);
    assert.equal(there.code, 66, `B's write reached A's cluster: ${there.stdout}${there.stderr}`);

    // A's own members still take its writes, values starting with - included.
    const neg = await a.run(["config", "set", "app/neg", "--", "-5"]);
    assert.equal(neg.code, 0, neg.stderr);
    const back = await a.run(["config", "get", "app/neg"]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout.trim(), "-5");
  });
});
