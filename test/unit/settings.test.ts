import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AUTO_COMPACTION_REVISIONS, etcdServerArgs } from "../../src/consensus/etcd-args.ts";
import { DEFAULT_SETTINGS, affectsSettings, newSettingProblems, refuseNewSettingProblems, resolveSettings, settingProblems } from "../../src/consensus/settings.ts";
import { readLastGoodSettings, writeLastGoodSettings } from "../../src/node/last-good-settings.ts";
import { nodePaths } from "../../src/node/paths.ts";

const k = (s: string) => `raptiformica/meshnet/${s}`;

describe("cluster settings", () => {
  it("a bad value falls back to the last good value of that key only, and is reported", () => {
    const lastGood = { ...DEFAULT_SETTINGS, clientPort: 2400, maxVoters: 3 };
    const { settings, problems } = resolveSettings({ [k("etcd/client_port")]: "24OO", [k("etcd/max_voters")]: "7", [k("etcd/node_ttl")]: "" }, lastGood);
    assert.equal(settings.clientPort, 2400, "kept from the last good settings");
    assert.equal(settings.maxVoters, 7, "a good value is taken");
    assert.equal(settings.nodeTtlSeconds, lastGood.nodeTtlSeconds, "an empty string is not 0");
    assert.deepEqual(problems.map((p) => p.key), [k("etcd/client_port"), k("etcd/node_ttl")]);
    assert.match(problems[0]?.message ?? "", /client_port is "24OO", but it must be a whole number from 1 to 65535/);
  });

  it("without a last good value, the default stands in; never throws", () => {
    const { settings, problems } = resolveSettings({ [k("yggdrasil/port")]: "-1", [k("evict_after")]: "1.5" });
    assert.equal(settings.yggdrasilPort, 4863);
    assert.equal(settings.evictAfterSeconds, 3600);
    assert.equal(problems.length, 2);
  });

  it("heartbeat and election fall back together when the election timeout is under 5 heartbeats", () => {
    const lastGood = { ...DEFAULT_SETTINGS, heartbeatMs: 300, electionMs: 3000 };
    const { settings, problems } = resolveSettings({ [k("etcd/heartbeat_ms")]: "900", [k("etcd/election_ms")]: "3000" }, lastGood);
    assert.deepEqual([settings.heartbeatMs, settings.electionMs], [300, 3000]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.message ?? "", /election_ms is 3000 but .*heartbeat_ms is 900.*config set raptiformica\/meshnet\/etcd\/election_ms 9000/);
  });

  it("unknown keys in raptiformica's own setting folders are reported with the nearest known key; others are not settings", () => {
    const problems = settingProblems({
      [k("etcd/max_voter")]: "3",
      [k("yggdrasil/prot")]: "1",
      [k("evict_afterr")]: "5",
      [k("etcd/something_else_entirely")]: "x",
      [k("neighbours/ab/host")]: "h",
      [k("example/value")]: "42",
      [k("etcd/cluster_token")]: "t",
    });
    assert.deepEqual(problems.map((p) => p.key), [k("etcd/max_voter"), k("etcd/something_else_entirely"), k("evict_afterr"), k("yggdrasil/prot")]);
    assert.match(problems[0]?.message ?? "", /Did you mean raptiformica\/meshnet\/etcd\/max_voters\?/);
    assert.match(problems[3]?.message ?? "", /Did you mean raptiformica\/meshnet\/yggdrasil\/port\?/);
    assert.doesNotMatch(problems[1]?.message ?? "", /Did you mean/);
  });

  it("a write is refused only for the problems it brings in: an old bad value can be fixed while another stays bad", () => {
    const before = { [k("etcd/max_voters")]: "many", [k("etcd/node_ttl")]: "0" };
    assert.deepEqual(newSettingProblems(before, { ...before, [k("etcd/max_voters")]: "3" }), []);
    assert.doesNotThrow(() => refuseNewSettingProblems(before, { ...before, [k("etcd/max_voters")]: "3" }, "x"));
    assert.throws(() => refuseNewSettingProblems(before, { ...before, [k("etcd/peer_port")]: "0" }, "Setting peer_port"), /Setting peer_port was refused, nothing was changed: Config key raptiformica\/meshnet\/etcd\/peer_port is "0"/);
  });
});

describe("which keys the settings depend on", () => {
  // Keys of every kind a mapping holds: settings, typos in setting folders, deeper meshnet keys,
  // neighbour entries, module and app keys.
  const keys = [
    k("etcd/client_port"), k("etcd/peer_port"), k("yggdrasil/port"), k("agent/port"), k("map/port"), k("etcd/max_voters"), k("etcd/node_ttl"),
    k("etcd/heartbeat_ms"), k("etcd/election_ms"), k("evict_after"), k("yggdrasil/major"), k("yggdrasil/password"), k("etcd/ca_cert"),
    k("etcd/client_prot"), k("evict_afterr"), k("map/x"), k("agent/porrt"),
    k("etcd/tls/x"), k("neighbours/ab12/host"), k("neighbours/ab12/yggdrasil_port"), k("yggdrasil/peers/x"),
    "raptiformica/server/headless/x", "raptiformica/platform/default/hooks/h/command", "raptiformica/app/port",
  ];
  const values = [undefined, "", "22", "2379", "5", "4863", "abc", "0.5", "x".repeat(40)];
  const base = { [k("etcd/client_port")]: "2400", [k("etcd/election_ms")]: "300", [k("etcd/heartbeat_ms")]: "100", "raptiformica/app/port": "1" };

  it("a change to a key that does not affect the settings leaves what resolveSettings returns as it was", () => {
    const before = resolveSettings(base);
    let tried = 0;
    for (const key of keys.filter((x) => !affectsSettings(x))) {
      for (const value of values) {
        const after = { ...base };
        if (value === undefined) delete after[key];
        else after[key] = value;
        assert.deepEqual(resolveSettings(after), before, `${key} = ${String(value)}`);
        tried++;
      }
    }
    assert.ok(tried >= 6 * values.length, `${tried} changes tried`);
  });

  it("every key that can change the result is one that affects the settings", () => {
    const affecting = keys.filter((x) => values.some((value) => {
      const after = { ...base };
      if (value === undefined) delete after[x];
      else after[x] = value;
      return JSON.stringify(resolveSettings(after)) !== JSON.stringify(resolveSettings(base));
    }));
    for (const key of affecting) assert.ok(affectsSettings(key), key);
    assert.deepEqual(keys.filter((x) => !affectsSettings(x)), [k("etcd/tls/x"), k("neighbours/ab12/host"), k("neighbours/ab12/yggdrasil_port"), k("yggdrasil/peers/x"), "raptiformica/server/headless/x", "raptiformica/platform/default/hooks/h/command", "raptiformica/app/port"]);
  });
});

describe("ports a member listens on", () => {
  it("two of client, peer and yggdrasil port on one number are refused, and all three ports keep their last good values", () => {
    const lastGood = { ...DEFAULT_SETTINGS, clientPort: 2479, peerPort: 2480 };
    for (const [mapping, key, other] of [
      [{ [k("etcd/client_port")]: "2380", [k("etcd/peer_port")]: "2380" }, k("etcd/client_port"), k("etcd/peer_port")],
      [{ [k("etcd/client_port")]: "2379", [k("yggdrasil/port")]: "2379" }, k("yggdrasil/port"), k("etcd/client_port")],
      [{ [k("etcd/peer_port")]: "4863" }, k("etcd/peer_port"), k("yggdrasil/port")],
    ] as const) {
      const { settings, problems } = resolveSettings(mapping, lastGood);
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]?.key, key);
      assert.deepEqual([...(problems[0]?.keys ?? [])].sort(), [key, other].sort());
      assert.match(problems[0]?.message ?? "", /are both \d+: .*address already in use/);
      assert.deepEqual([settings.clientPort, settings.peerPort, settings.yggdrasilPort], [2479, 2480, 4863], JSON.stringify(mapping));
    }
    const fix = resolveSettings({ [k("etcd/client_port")]: "2380", [k("etcd/peer_port")]: "2380" }).problems[0]?.message ?? "";
    assert.match(fix, /config set raptiformica\/meshnet\/etcd\/client_port 2379`/, "the fix names a free port");
  });

  it("a port the node needs for sshd is refused for every port setting", () => {
    for (const field of ["etcd/client_port", "etcd/peer_port", "yggdrasil/port"]) {
      const { settings, problems } = resolveSettings({ [k(field)]: "22" });
      assert.deepEqual(problems.map((p) => p.key), [k(field)]);
      assert.match(problems[0]?.message ?? "", /is 22, but that is sshd's port/);
      assert.ok(![settings.clientPort, settings.peerPort, settings.yggdrasilPort].includes(22));
    }
    assert.throws(() => refuseNewSettingProblems({}, { [k("yggdrasil/port")]: "22" }, "Setting port"), /Setting port was refused/);
  });

  it("the map port (meshnet/map/port, default 4865) is checked like the other ports: range, sshd's port, collisions", () => {
    assert.equal(DEFAULT_SETTINGS.mapPort, 4865);
    assert.equal(resolveSettings({ [k("map/port")]: "8080" }).settings.mapPort, 8080);
    const lastGood = { ...DEFAULT_SETTINGS, mapPort: 4999 };
    const range = resolveSettings({ [k("map/port")]: "70000" }, lastGood);
    assert.equal(range.settings.mapPort, 4999, "a bad value keeps the last good one");
    assert.match(range.problems[0]?.message ?? "", /map\/port is "70000", but it must be a whole number from 1 to 65535/);
    assert.match(resolveSettings({ [k("map/port")]: "22" }).problems[0]?.message ?? "", /map\/port is 22, but that is sshd's port/);
    const clash = resolveSettings({ [k("map/port")]: "4864" }, lastGood);
    assert.deepEqual(clash.problems.map((p) => [...p.keys].sort()), [[k("agent/port"), k("map/port")]]);
    assert.equal(clash.problems[0]?.key, k("map/port"), "the key moved away from its default is the one to fix");
    assert.deepEqual([clash.settings.mapPort, clash.settings.agentPort], [4999, 4864]);
    // A typo in the map's folder is named, like one in the others.
    assert.match(settingProblems({ [k("map/prot")]: "1" })[0]?.message ?? "", /Did you mean raptiformica\/meshnet\/map\/port\?/);
  });

  it("a swap of two ports is no collision, and a last good value that collides is not used", () => {
    assert.deepEqual(settingProblems({ [k("etcd/client_port")]: "2380", [k("etcd/peer_port")]: "2379" }), []);
    const { settings } = resolveSettings({ [k("etcd/client_port")]: "2380" }, { ...DEFAULT_SETTINGS, clientPort: 2380 });
    assert.deepEqual([settings.clientPort, settings.peerPort], [2379, 2380]);
  });

  it("numbers are plain decimal digits only", () => {
    for (const raw of [" 5", "5 ", "5.0", "1e1", "0x5", "+5", "-5", "5_0", "٥"]) {
      const { settings, problems } = resolveSettings({ [k("etcd/max_voters")]: raw });
      assert.deepEqual(problems.map((p) => p.key), [k("etcd/max_voters")], raw);
      assert.equal(settings.maxVoters, DEFAULT_SETTINGS.maxVoters, raw);
    }
    assert.equal(resolveSettings({ [k("etcd/max_voters")]: "03" }).settings.maxVoters, 3);
  });
});

describe("the last good settings file", () => {
  it("round-trips, and a damaged or partial file gives defaults for what it lacks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rf-settings-"));
    try {
      const path = join(dir, "settings.json");
      assert.equal(readLastGoodSettings(path), undefined);
      const s = { ...DEFAULT_SETTINGS, clientPort: 2400 };
      await writeLastGoodSettings(path, s);
      assert.deepEqual(readLastGoodSettings(path), s);
      writeFileSync(path, JSON.stringify({ clientPort: 2500, peerPort: "x" }));
      assert.deepEqual(readLastGoodSettings(path), { ...DEFAULT_SETTINGS, clientPort: 2500 });
      writeFileSync(path, "{");
      assert.equal(readLastGoodSettings(path), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("etcd's history", () => {
  it("is compacted automatically, by revision count", () => {
    const args = etcdServerArgs(nodePaths("/x"), {
      name: "n",
      meshAddress: "200::1",
      clientPort: 2379,
      peerPort: 2380,
      state: "new",
      initialCluster: new Map([["n", "https://[200::1]:2380"]]),
      token: "t",
      heartbeatMs: 100,
      electionMs: 1000,
    });
    assert.equal(args[args.indexOf("--auto-compaction-mode") + 1], "revision");
    assert.equal(args[args.indexOf("--auto-compaction-retention") + 1], String(AUTO_COMPACTION_REVISIONS));
  });
});
