import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { ClusterId } from "../../src/consensus/cluster-id.ts";
import { neighbourMapping } from "../../src/mesh/neighbours.ts";
import { checkAnswer, otherCluster, reportedClusterId, shownConfigClusterId } from "../../src/ops/cluster/same-cluster.ts";
import { decodeAnswer, identityAnswer, membersAnswer } from "../../src/ops/cluster/wire.ts";
import { memberTargets, onFirstMember } from "../../src/ops/via-member.ts";
import type { SshSettings } from "../../src/remote/ssh.ts";
import { UserError } from "../../src/util/errors.ts";

const X = "a".repeat(64) as ClusterId;
const Y = "b".repeat(64) as ClusterId;
const KEY = "c".repeat(64);
const PEM = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
const out = (stdout: string, exitCode = 0) => ({ stdout, stderr: "", exitCode, timedOut: false });

/** An operator's config naming two members with a host. */
const mapping = {
  ...neighbourMapping({ publicKey: "1".repeat(64), meshAddress: "200::1", host: "10.0.0.1", sshPort: 22, yggdrasilPort: 7000 }),
  ...neighbourMapping({ publicKey: "2".repeat(64), meshAddress: "200::2", host: "10.0.0.2", sshPort: 22, yggdrasilPort: 7000 }),
};

describe("same cluster: an operator uses only members of the cluster it manages", () => {
  it("decodes the clusterId a member reports, and answers without one as before", () => {
    const id = decodeAnswer(identityAnswer, out(JSON.stringify({ publicKey: KEY, meshAddress: "200::1", clusterId: X })), "m", "identity --json");
    assert.equal(id.clusterId, X);
    const members = decodeAnswer(membersAnswer, out(JSON.stringify({ clusterId: Y, quorum: true, members: [] })), "m", "members --json");
    assert.equal(members.clusterId, Y);
    assert.equal(decodeAnswer(membersAnswer, out(JSON.stringify({ quorum: true, members: [] })), "m", "members --json").clusterId, undefined);
    assert.throws(() => decodeAnswer(identityAnswer, out(JSON.stringify({ publicKey: KEY, meshAddress: "200::1", clusterId: "nope" })), "m", "identity --json"), /clusterId: not a cluster id/);
  });

  it("tells a member of another cluster from its answers; unknown on either side is accepted", () => {
    assert.deepEqual(otherCluster(X, Y), { mine: X, theirs: Y });
    assert.equal(otherCluster(X, X), undefined);
    assert.equal(otherCluster(undefined, Y), undefined, "this machine manages no cluster yet");
    assert.equal(otherCluster(X, undefined), undefined, "an older member reports none");
    assert.equal(reportedClusterId(JSON.stringify({ clusterId: Y, quorum: true, members: [] })), Y);
    assert.equal(reportedClusterId("not json"), undefined);
    const usable = { "raptiformica/server/s/x": "1", "raptiformica/compute/c/x": "1", "raptiformica/platform/p/x": "1" };
    const shown = shownConfigClusterId(JSON.stringify({ ...usable, "raptiformica/meshnet/etcd/ca_cert": PEM }));
    assert.match(shown ?? "", /^[0-9a-f]{64}$/);
    assert.equal(shownConfigClusterId(JSON.stringify(usable)), undefined);
    // Read as every config a machine states is read (wire.ts configText): one that is no usable config names no cluster.
    assert.equal(shownConfigClusterId(JSON.stringify({ "raptiformica/meshnet/etcd/ca_cert": PEM })), undefined);
    const check = checkAnswer(X, (o) => reportedClusterId(o.stdout));
    const member = { who: "root@h", run: async () => out(""), writeCacheFile: async () => true };
    assert.deepEqual(check.after?.(member, out(JSON.stringify({ clusterId: Y }))), { mine: X, theirs: Y });
    assert.equal(check.after?.(member, out(JSON.stringify({ clusterId: X }))), undefined);
  });

  it("passes over every member of another cluster without sending the command, and refuses naming both clusters", async () => {
    const asked: string[] = [];
    const e = await onFirstMember(async () => ({}) as SshSettings, memberTargets(mapping), "raptiformica", ["config", "set", "--", "k", "v"], 3, {
      before: async (member) => {
        asked.push(member.who);
        return { mine: X, theirs: Y };
      },
    }).then(
      () => assert.fail("a member of another cluster was used"),
      (err: unknown) => err,
    );
    assert.ok(e instanceof UserError);
    assert.deepEqual(asked.sort(), ["root@10.0.0.1", "root@10.0.0.2"], "every member is tried, as for an unreachable one");
    assert.match(e.message, new RegExp(`No member of cluster ${X.slice(0, 16)} \\(the cluster this machine manages\\) answered`));
    assert.match(e.message, new RegExp(`root@10\\.0\\.0\\.1: it is now a member of cluster ${Y.slice(0, 16)}, not of cluster ${X.slice(0, 16)}`));
    assert.match(e.message, /raptiformica slave HOST/);
    assert.match(e.message, /raptiformica destroy/);
  });
});
