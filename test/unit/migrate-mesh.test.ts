import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { settingProblems } from "../../src/consensus/settings.ts";
import { MESH_MAJOR_KEY, clusterYggdrasilMajor, mixedMajorProblem, neighbourMapping, type Neighbour } from "../../src/mesh/neighbours.ts";
import { majorFromUsage } from "../../src/mesh/yggdrasil/version.ts";
import { migrationTargets } from "../../src/ops/migrate-mesh.ts";
import type { MemberRow } from "../../src/ops/cluster/wire.ts";

const key = (c: string) => c.repeat(64);
const neighbour = (c: string, extra: Partial<Neighbour> = {}): Neighbour => ({
  publicKey: key(c),
  meshAddress: `200::${c}`,
  host: `198.18.0.${c.charCodeAt(0) - 96}`,
  sshPort: 22,
  yggdrasilPort: 4863,
  yggdrasilMajor: "0.4",
  name: `n-${c}`,
  ...extra,
});
const mapping = (...ns: Neighbour[]) => Object.assign({}, ...ns.map(neighbourMapping)) as Record<string, string>;
const row = (c: string, status: MemberRow["status"] = "alive"): MemberRow => ({ name: `n-${c}`, publicKey: key(c), meshAddress: `200::${c}`, status });

describe("a cluster that chose its Yggdrasil major (meshnet/yggdrasil/major, written by migrate-mesh)", () => {
  const cluster = { ...mapping(neighbour("a"), neighbour("b"), neighbour("c", { yggdrasilMajor: "0.5" })), [MESH_MAJOR_KEY]: "0.5" };

  it("the choice is the cluster's major, whatever the members still record (what slave gives the bootstrap)", () => {
    assert.equal(clusterYggdrasilMajor(cluster), "0.5");
    assert.equal(clusterYggdrasilMajor(mapping(neighbour("a"), neighbour("b"))), "0.4", "without a choice: what the members record");
  });

  it("a member on the chosen major is not refused while others still record the old one (they are switching)", () => {
    assert.equal(mixedMajorProblem(cluster, key("c"), "0.5"), undefined);
    // Without the choice the same mapping is a mixed cluster and refused.
    const { [MESH_MAJOR_KEY]: _, ...unchosen } = cluster;
    assert.match(mixedMajorProblem(unchosen, key("c"), "0.5") ?? "", /n-a.*n-b|cannot peer/);
  });

  it("a registered member still on the old major is not refused (its mesh step switches once the binary is there)", () => {
    assert.equal(mixedMajorProblem(cluster, key("a"), "0.4"), undefined);
  });

  it("a newcomer on the old major is refused, naming the key and what to do", () => {
    const why = mixedMajorProblem(cluster, key("z"), "0.4");
    assert.ok(why, "refused");
    assert.match(why, /moved to 0\.5/);
    assert.match(why, new RegExp(MESH_MAJOR_KEY.replace(/\//g, "\\/")));
    assert.match(why, /slave/);
  });

  it("config set of the key takes 0.4 or 0.5 only (the same rule the agent reads it by)", () => {
    assert.deepEqual(settingProblems({ [MESH_MAJOR_KEY]: "0.5" }), []);
    assert.deepEqual(settingProblems({ [MESH_MAJOR_KEY]: "0.4" }), []);
    const bad = settingProblems({ [MESH_MAJOR_KEY]: "0.6" });
    assert.equal(bad.length, 1);
    assert.equal(bad[0]?.key, MESH_MAJOR_KEY);
    assert.match(bad[0]?.message ?? "", /must be 0\.4 or 0\.5/);
  });
});

describe("migrationTargets: every member, each reachable over SSH and alive, or a refusal naming the others", () => {
  it("every neighbour that has not left, with its SSH target", () => {
    const m = mapping(neighbour("a"), neighbour("b", { sshPort: 2222 }), neighbour("c", { left: true }));
    const t = migrationTargets(m, [row("a"), row("b"), row("c", "left")]);
    assert.deepEqual(
      t.map((x) => [x.name, x.ssh.host, x.ssh.port]),
      [
        ["n-a", "198.18.0.1", 22],
        ["n-b", "198.18.0.2", 2222],
      ],
    );
  });

  it("refuses while a member is not alive: the switch would cut it off", () => {
    const m = mapping(neighbour("a"), neighbour("b"));
    assert.throws(() => migrationTargets(m, [row("a"), row("b", "failed")]), /n-b \(failed\).*cut off.*members --evict/);
    assert.throws(() => migrationTargets(m, [row("a")]), /n-b \(not in members\)/);
  });

  it("refuses a member with no host (behind NAT): the new binary cannot be installed from here", () => {
    const { host: _h, ...noHost } = neighbour("b");
    const m = mapping(neighbour("a"), noHost as Neighbour);
    assert.throws(() => migrationTargets(m, [row("a"), row("b")]), /n-b has no address.*by hand/);
  });
});

describe("majorFromUsage: the installed Yggdrasil's major from `yggdrasil -h`", () => {
  it("0.5 lists -publickey and -exportkey, 0.4 does not; anything else is no Yggdrasil", () => {
    assert.equal(majorFromUsage("Usage of yggdrasil:\n  -useconffile string\n  -publickey\n  -exportkey\n"), "0.5");
    assert.equal(majorFromUsage("Usage of yggdrasil:\n  -useconffile string\n  -genconf\n"), "0.4");
    assert.equal(majorFromUsage("sh: 1: yggdrasil: not found"), undefined);
  });
});
