import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Etcd3 } from "etcd3";
import { LocalConfig } from "../../src/config/local.ts";
import { cachePaths } from "../../src/config/paths.ts";
import { openClient } from "../../src/consensus/client.ts";
import { ensureNodeCertificate } from "../../src/consensus/pki.ts";
import { createCa } from "../../src/consensus/tls.ts";
import { ConfigView, etcdConfigKv } from "../../src/node/config-view.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { ROOT, sandbox, type Sandbox } from "../helpers/cli.ts";
import { waitFor } from "../lab/index.ts";

/*
 * A member's view of cluster settings and etcd alarms, through the built CLI: the cache dir of
 * a member (node certificate from a cluster CA) whose KV is a real etcd on loopback with mutual
 * TLS and a tiny space quota, so NOSPACE is reached in a few writes. Bad values are written
 * straight into the KV, past `config set`, as an older version or a hand-run etcdctl would.
 */

const skip = spawnSync("sh", ["-c", "command -v etcd"], { stdio: "ignore" }).status !== 0 ? "needs etcd" : undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

interface MembersJson {
  quorum: boolean;
  problems?: { kind: string; subject: string; message: string }[];
}

describe("cluster settings and etcd alarms on a member", { skip, timeout: 90_000 }, () => {
  let sb: Sandbox;
  let etcd: ChildProcess | undefined;
  let kv: Etcd3;
  let clientPort = 0;
  const key = (k: string) => `raptiformica/meshnet/${k}`;

  before(async () => {
    sb = sandbox();
    clientPort = await freePort();
    const peerPort = await freePort();
    // The member's local config: the module defaults, with this etcd's client port.
    const set = await sb.run(["config", "set", "meshnet/etcd/client_port", String(clientPort)]);
    assert.equal(set.code, 0, set.stderr);
    const node = nodePaths(join(sb.cache, "node"));
    const ca = await createCa();
    await ensureNodeCertificate(node, ca, "m1", "127.0.0.1");
    const url = `https://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    // 1 MB: a handful of 200 kB writes raise NOSPACE.
    etcd = spawn(
      "etcd",
      ["--name", "m1", "--data-dir", join(sb.home, "etcd"), "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `m1=${peer}`,
        "--client-cert-auth", "--trusted-ca-file", node.caCert, "--cert-file", node.nodeCert, "--key-file", node.nodeKey, "--quota-backend-bytes", String(1024 * 1024)],
      { stdio: "ignore" },
    );
    kv = openClient([url], node, 2000);
    await waitFor("etcd on loopback", async () => (await kv.put("probe").value("1"), true), { timeoutMs: 15_000, intervalMs: 200 });
    // The cluster KV holds the shared config, as after the first member seeded it.
    const mapping = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
    for (const [k, v] of Object.entries(mapping)) await kv.put(k).value(v);
  });

  after(() => {
    kv?.close();
    etcd?.kill("SIGKILL");
    sb?.cleanup();
  });

  const members = async () => {
    const r = await sb.run(["members", "--json"]);
    return { code: r.code, stderr: `${r.stderr}\n${r.stdout}`, json: JSON.parse(r.stdout || "{}") as MembersJson };
  };

  it("members shows a bad value in the KV; config still works on the member, refuses new bad values and fixes the old one", async () => {
    await kv.put(key("etcd/max_voters")).value("five");
    // The agent mirrors the KV into the local cache, bad values too; the settings it last ran
    // with stand in for them (node/settings.json). `config` must still reach the KV.
    const local = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
    writeFileSync(join(sb.cache, "mutable_config.json"), JSON.stringify({ ...local, [key("etcd/client_port")]: "two-three-seven-nine", [key("etcd/heartbeat_ms")]: "fast" }));
    writeFileSync(join(sb.cache, "node", "settings.json"), JSON.stringify({ clientPort }));

    let m = await members();
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.json.quorum, true);
    const shown = m.json.problems?.find((p) => p.subject === key("etcd/max_voters"));
    assert.ok(shown, JSON.stringify(m.json.problems));
    assert.equal(shown.kind, "setting");
    assert.match(shown.message, /is "five", but it must be a whole number from 1 to 99\. Fix it with `raptiformica config set raptiformica\/meshnet\/etcd\/max_voters <value>`/);
    const human = await sb.run(["members"]);
    assert.match(human.stdout, /problems:\n {2}- Config key raptiformica\/meshnet\/etcd\/max_voters is "five"/);

    let r = await sb.run(["config", "get", "meshnet/etcd/max_voters"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "five", "read from the KV");

    for (const [k, v, says] of [
      ["meshnet/etcd/node_ttl", "1", /node_ttl is "1", but it must be a whole number from 2 to 600/],
      ["meshnet/yggdrasil/port", "70000", /port is "70000", but it must be a whole number from 1 to 65535/],
      ["meshnet/etcd/heartbeat_ms", "500", /election_ms is 1000 but .*heartbeat_ms is 500/],
      ["meshnet/etcd/max_votres", "3", /max_votres is not a setting raptiformica knows.*Did you mean raptiformica\/meshnet\/etcd\/max_voters\?/],
    ] as const) {
      r = await sb.run(["config", "set", k, v]);
      assert.equal(r.code, 1, `${k}=${v}: ${r.stderr}`);
      assert.match(r.stderr, says);
      assert.match(r.stderr, /refused, nothing was changed/);
      assert.equal((await kv.get(`raptiformica/${k}`).string()) ?? undefined, k === "meshnet/etcd/node_ttl" ? "5" : k === "meshnet/yggdrasil/port" ? "4863" : undefined);
    }
    // Deleting the election timeout would bring back its default, too short for this heartbeat.
    for (const [k, v] of [["meshnet/etcd/election_ms", "3000"], ["meshnet/etcd/heartbeat_ms", "300"]] as const) {
      r = await sb.run(["config", "set", k, v]);
      assert.equal(r.code, 0, r.stderr);
    }
    r = await sb.run(["config", "delete", "meshnet/etcd/election_ms"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Deleting raptiformica\/meshnet\/etcd\/election_ms was refused/);

    // The bad value itself can be fixed, while it is still bad.
    r = await sb.run(["config", "set", "meshnet/etcd/max_voters", "3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await kv.get(key("etcd/max_voters")).string(), "3");
    m = await members();
    assert.equal(m.code, 0, m.stderr);
    assert.deepEqual(m.json.problems, []);
  });

  it("a neighbour host or launcher no code can use is refused by config set, and one already in the KV is shown by members", async () => {
    const n = `raptiformica/meshnet/neighbours/${"cd".repeat(32)}`;
    await kv.put(`${n}/mesh_address`).value("200::cd");
    await kv.put(`${n}/host`).value("bad_host");
    let m = await members();
    assert.equal(m.code, 0, m.stderr);
    const shown = m.json.problems?.find((p) => p.subject === `${n}/host`);
    assert.ok(shown, JSON.stringify(m.json.problems));
    assert.equal(shown.kind, "neighbour");
    assert.match(shown.message, /bad_host/);

    const good = `raptiformica/meshnet/neighbours/${"ce".repeat(32)}`;
    await kv.put(`${good}/mesh_address`).value("200::ce");
    for (const [k, v] of [[`${good}/host`, "h:22"], [`${good}/host`, "$(reboot)"], ["remote/command", "/x; rm -rf /"], ["remote/command", "raptiformica"]] as const) {
      const r = await sb.run(["config", "set", k, v]);
      assert.equal(r.code, 1, `${k}=${v}: ${r.stderr}`);
      assert.match(r.stderr, /refused, nothing was changed/);
    }
    assert.equal(await kv.get(`${good}/host`).string(), null);
    assert.equal(await kv.get("raptiformica/remote/command").string(), null);

    // The bad one can be fixed while it is bad; then members has nothing to say about it.
    const r = await sb.run(["config", "set", `${n}/host`, "[2001:db8::cd]"]);
    assert.equal(r.code, 0, r.stderr);
    m = await members();
    assert.ok(!m.json.problems?.some((p) => p.kind === "neighbour"), JSON.stringify(m.json.problems));
    await kv.delete().prefix(n);
    await kv.delete().prefix(good);
  });

  it("a key no config can hold costs only that key: config and members use the KV, name it, and config delete removes it", async () => {
    const spaced = "raptiformica/app/a b";
    const slashes = "raptiformica//platform/default/hooks/x/y/command";
    await kv.put(spaced).value("v");
    await kv.put(slashes).value("touch /tmp/x");
    // Only in the KV, not in the local cache: seen only when the KV is the one answering.
    await kv.put("raptiformica/app/good").value("1");

    const m = await members();
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.json.quorum, true, "etcd answers: no quorum loss");
    const named = (m.json.problems ?? []).filter((p) => p.kind === "key").map((p) => p.subject);
    assert.deepEqual(named, [slashes, spaced]);
    const human = await sb.run(["members"]);
    assert.match(human.stdout, /problems:\n.*Config key "raptiformica\/app\/a b" in the cluster KV is skipped: it contains white space/s);
    assert.doesNotMatch(human.stderr, /skipped/, "members names it once, with the problems");

    let r = await sb.run(["config", "show", "app"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "raptiformica/app/good = 1");
    assert.match(r.stderr, /warning: Config key "raptiformica\/app\/a b" in the cluster KV is skipped: it contains white space\. .*config delete 'raptiformica\/app\/a b'/);
    assert.match(r.stderr, /warning: Config key "raptiformica\/\/platform\/default\/hooks\/x\/y\/command" in the cluster KV is skipped: it has an empty path segment/);

    r = await sb.run(["config", "set", "app/other", "2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /queued/);
    assert.equal(await kv.get("raptiformica/app/other").string(), "2", "written to the KV, not queued");
    assert.equal(await kv.get(spaced).string(), "v", "a write leaves the skipped keys alone");

    // The agent's view of the config: the KV still, the keys named in its log, none mirrored.
    const warnings: string[] = [];
    const log = { verbose: false, debug: () => undefined, info: () => undefined, warn: (w: string) => void warnings.push(w) };
    const local = new LocalConfig(cachePaths(sb.cache), ROOT, log, false);
    const view = new ConfigView({ local, log, lastGoodSettingsPath: join(sb.cache, "node", "settings.json"), kv: () => etcdConfigKv(kv), openKv: () => etcdConfigKv(kv) });
    const seen = await view.mapping();
    assert.equal(seen["raptiformica/app/good"], "1");
    assert.equal(seen[spaced], undefined);
    assert.equal(warnings.filter((w) => w.includes(JSON.stringify(spaced))).length, 1, warnings.join("\n"));
    await view.mirror();
    view.stop();
    const cached = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
    assert.equal(cached["raptiformica/app/good"], "1", "mirrored into the local cache");
    assert.deepEqual(Object.keys(cached).filter((k) => k.includes(" ") || k.includes("//")), []);

    r = await sb.run(["config", "delete", spaced]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await kv.get(spaced).string(), null, "removed from the KV");
    r = await sb.run(["config", "delete", slashes]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await kv.get(slashes).string(), null);

    // --recursive takes the skipped keys below the folder too.
    await kv.put("raptiformica/app/c d").value("v");
    r = await sb.run(["config", "delete", "-r", "raptiformica/app"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await kv.getAll().prefix("raptiformica/app/").keys()).length, 0);
    const after = await members();
    assert.deepEqual(after.json.problems, []);
  });

  it("a write that would leave the shared config without a section is refused before it reaches the KV", async () => {
    const before = (await kv.getAll().prefix("raptiformica/platform/").keys()).length;
    assert.ok(before > 0);
    for (const [k, extra] of [["raptiformica/platform", ["--recursive"]], ["meshnet/etcd/cluster_token", []]] as const) {
      await kv.put("raptiformica/meshnet/etcd/cluster_token").value("raptiformica-0123456789abcdef");
      const r = await sb.run(["config", "delete", k, ...extra]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /refused|Refusing/);
    }
    assert.equal((await kv.getAll().prefix("raptiformica/platform/").keys()).length, before, "the KV kept the section");
    assert.equal(await kv.get("raptiformica/meshnet/etcd/cluster_token").string(), "raptiformica-0123456789abcdef");
    const m = await members();
    assert.equal(m.json.quorum, true, m.stderr);
    await kv.delete().key("raptiformica/meshnet/etcd/cluster_token");
  });

  it("members shows etcd's NOSPACE alarm, exit 1", async () => {
    const big = "x".repeat(200_000);
    let full = false;
    // Distinct keys: the data itself, not only its history, outgrows the 1 MB quota (bounded:
    // at most 200 writes, 40 MB).
    for (let i = 0; i < 200 && !full; i++) {
      try {
        await kv.put(`filler/${i}`).value(big);
      } catch (e) {
        assert.match(String(e), /database space exceeded/);
        full = true;
      }
    }
    assert.ok(full, "the quota was reached");
    const m = await members();
    assert.equal(m.code, 1, m.stderr);
    const alarm = m.json.problems?.find((p) => p.kind === "alarm");
    assert.ok(alarm, JSON.stringify(m.json.problems));
    assert.equal(alarm.subject, "m1");
    assert.match(alarm.message, /etcd raised NOSPACE on member m1: its database reached the space quota/);
    assert.match(alarm.message, /compact \d+`, then `defrag --cluster` and `alarm disarm`/);
    // `config` still reads on a member whose KV takes no writes.
    const r = await sb.run(["config", "get", "meshnet/etcd/max_voters"]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe("a member whose KV does not answer", { skip, timeout: 30_000 }, () => {
  it("config get and show answer from the member's cache and say so in one line on stderr", async () => {
    const sb = sandbox();
    try {
      // A member (node certificate) whose etcd is not running: nothing listens on its client port.
      const port = await freePort();
      const set = await sb.run(["config", "set", "meshnet/etcd/client_port", String(port)]);
      assert.equal(set.code, 0, set.stderr);
      await ensureNodeCertificate(nodePaths(join(sb.cache, "node")), await createCa(), "m1", "127.0.0.1");
      for (const argv of [["config", "get", "meshnet/etcd/max_voters"], ["config", "show", "meshnet/etcd/max_voters"]]) {
        const r = await sb.run(argv);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), argv[1] === "get" ? "5" : "raptiformica/meshnet/etcd/max_voters = 5", "the data is unchanged");
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0] ?? "", /^warning: the cluster KV did not answer on this member: this is the member's cached copy of the shared config \(.*mutable_config\.json\), which may be out of date\.$/);
      }
    } finally {
      sb.cleanup();
    }
  });
});

describe("installing a module", () => {
  it("removing one is refused when the values that come back would not fit the rest", async () => {
    const sb = sandbox();
    try {
      const dir = join(sb.home, "slow-links");
      mkdirSync(dir);
      writeFileSync(join(dir, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", meshnet: { etcd: { election_ms: 5000 }, yggdrasil: { port: 2000 } } }));
      let r = await sb.run(["install", dir]);
      assert.equal(r.code, 0, r.stderr);
      for (const [k, v] of [["meshnet/etcd/heartbeat_ms", "1000"], ["meshnet/etcd/client_port", "4863"]] as const) {
        r = await sb.run(["config", "set", k, v]);
        assert.equal(r.code, 0, r.stderr);
      }
      r = await sb.run(["install", "--remove", "slow-links"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Removing module "slow-links" was refused, nothing was changed/);
      const g = await sb.run(["config", "get", "meshnet/etcd/election_ms"]);
      assert.equal(g.stdout.trim(), "5000", "the module's value stays");
    } finally {
      sb.cleanup();
    }
  });

  it("is refused when the module sets a cluster setting to a value that cannot be used", async () => {
    const sb = sandbox();
    try {
      const dir = join(sb.home, "ttl-module");
      mkdirSync(dir);
      writeFileSync(join(dir, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", meshnet: { etcd: { node_ttl: 1 } } }));
      const r = await sb.run(["install", dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Installing module "ttl-module" was refused, nothing was changed: Config key raptiformica\/meshnet\/etcd\/node_ttl is "1"/);
      const g = await sb.run(["config", "get", "meshnet/etcd/node_ttl"]);
      assert.equal(g.stdout.trim(), "5");
    } finally {
      sb.cleanup();
    }
  });

  it("is refused when the module's ports collide with the cluster's or with sshd, naming the module file and key to change", async () => {
    const sb = sandbox();
    try {
      for (const [name, meshnet, says] of [
        ["client-module", { etcd: { client_port: 2380 } }, /client_port and .*peer_port are both 2380: .*address already in use.* Change meshnet\.etcd\.client_port in .*client-module\/raptiformica\.json and run `raptiformica install/],
        ["ygg-module", { yggdrasil: { port: 2379 } }, /client_port and .*yggdrasil\/port are both 2379.* Change meshnet\.yggdrasil\.port in .*ygg-module\/raptiformica\.json/],
        ["ssh-module", { etcd: { peer_port: 22 } }, /peer_port is 22, but that is sshd's port.* Change meshnet\.etcd\.peer_port in .*ssh-module\/raptiformica\.json/],
      ] as const) {
        const dir = join(sb.home, name);
        mkdirSync(dir);
        writeFileSync(join(dir, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", meshnet }));
        const r = await sb.run(["install", dir]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`Installing module "${name}" was refused, nothing was changed`));
        assert.match(r.stderr, says);
        assert.doesNotMatch(r.stderr, /config set/, "a module is fixed in its file, not with config set");
      }
      const g = await sb.run(["config", "show", "meshnet"]);
      assert.match(g.stdout, /etcd\/client_port = 2379\n/);
      assert.match(g.stdout, /etcd\/peer_port = 2380\n/);
      assert.match(g.stdout, /yggdrasil\/port = 4863$/m);
      // And config set refuses the same values.
      for (const [k, v] of [["meshnet/etcd/client_port", "2380"], ["meshnet/yggdrasil/port", "22"], ["meshnet/etcd/max_voters", "0x5"]] as const) {
        const r = await sb.run(["config", "set", k, v]);
        assert.equal(r.code, 1, `${k}=${v}: ${r.stderr}`);
        assert.match(r.stderr, /refused, nothing was changed/);
      }
    } finally {
      sb.cleanup();
    }
  });
});
