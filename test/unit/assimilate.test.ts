import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { FlatMapping } from "../../src/config/flatten.ts";
import type { ClusterId } from "../../src/consensus/cluster-id.ts";
import { assimilate, enlist, meshIn, registerViaMembers, UUID_WRITE_TRIES, type Registrar } from "../../src/ops/assimilate.ts";
import type { NodeChannel } from "../../src/ops/cluster/node-channel.ts";
import { onFirstChannel, onFirstMember } from "../../src/ops/via-member.ts";
import type { SshSettings } from "../../src/remote/ssh.ts";
import { ClusterUnavailable, UserError } from "../../src/util/errors.ts";
import { memberFailure } from "../../src/ops/cluster/member-cli.ts";
import type { Outcome } from "../../src/util/exec.ts";
import type { Logger } from "../../src/util/log.ts";

const KEY = "ab".repeat(32);
const ADDRESS = "200:1234::1";

/** A reply: an outcome, or a function of the argv that makes one, or throws as a channel does for a machine it cannot reach. */
type Reply = Partial<Outcome> | ((argv: readonly string[]) => Partial<Outcome>);

/**
 * A machine whose CLI answers from a script (first argv word → reply; default exit 0, no
 * output) and whose cache dir is a map: what the assimilate sequence asks of a channel, and
 * nothing else, so the order of commands and the files written can be checked.
 */
class ScriptedChannel implements NodeChannel {
  readonly calls: string[] = [];
  readonly files = new Map<string, string>();

  constructor(
    readonly who: string,
    private readonly replies: Record<string, Reply> = {},
  ) {}

  async run(argv: readonly string[], timeoutMs: number): Promise<Outcome> {
    this.calls.push(`${argv.join(" ")} (${timeoutMs / 1000} s)`);
    const reply = this.replies[argv[0] ?? ""] ?? {};
    return { exitCode: 0, stdout: "", stderr: "", timedOut: false, ...(typeof reply === "function" ? reply(argv) : reply) };
  }

  async writeCacheFile(name: string, content: string, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    this.calls.push(`write ${name}${opts.onlyIfAbsent ? " if absent" : ""}`);
    if (opts.onlyIfAbsent && this.files.has(name)) return false;
    this.files.set(name, content);
    return true;
  }
}

const newNode = (replies: Record<string, Reply> = {}) =>
  new ScriptedChannel("root@198.18.0.9:22", { identity: { stdout: JSON.stringify({ publicKey: KEY, meshAddress: ADDRESS }) }, ...replies });
const member = (who: string, config: FlatMapping, replies: Record<string, Reply> = {}) => new ScriptedChannel(who, { config: { stdout: JSON.stringify(config) }, ...replies });
const reach = { host: "198.18.0.9", port: 2222 };

describe("the assimilate sequence (ops/assimilate.ts)", () => {
  it("advertise, identity, register, hand the cluster's config, mesh, then the instance id, in that order", async () => {
    const node = newNode();
    const registered: string[] = [];
    const steps: string[] = [];
    const register: Registrar = async (key, at) => {
      registered.push(`${key} at ${at.host}:${at.port}`);
      return { "raptiformica/x": "cluster" };
    };
    const id = await assimilate({ node, reach, register, keepOwnConfig: false, afterMesh: false, uuid: "i-9", progress: (s, d) => steps.push(d ? `${s} ${d}` : s) });
    assert.deepEqual(id, { publicKey: KEY, meshAddress: ADDRESS });
    assert.deepEqual(node.calls, [
      "advertise 198.18.0.9 --port 2222 (120 s)",
      "identity --json (60 s)",
      "write mutable_config.json",
      "mesh --no-after-mesh (300 s)",
      `config set raptiformica/meshnet/neighbours/${KEY}/uuid i-9 (120 s)`,
    ]);
    assert.deepEqual(registered, [`${KEY} at 198.18.0.9:2222`]);
    assert.deepEqual(JSON.parse(node.files.get("mutable_config.json")!), { "raptiformica/x": "cluster" });
    assert.deepEqual(steps, ["register", `mesh ${ADDRESS}`]);
  });

  it("a node that keeps its own config is not overwritten; no config to hand writes none; after_mesh hooks on request", async () => {
    const kept = newNode();
    kept.files.set("mutable_config.json", "mine");
    await enlist({ node: kept, reach, register: async () => ({ a: "b" }), keepOwnConfig: true });
    assert.equal(kept.files.get("mutable_config.json"), "mine");
    assert.ok(kept.calls.includes("write mutable_config.json if absent"));

    const first = newNode();
    await assimilate({ node: first, reach, register: async () => undefined, keepOwnConfig: false, afterMesh: true });
    assert.equal(first.files.size, 0);
    assert.ok(first.calls.includes("mesh (300 s)"), first.calls.join("\n"));
  });

  it("a failing step stops the sequence with an error naming the node and the command; nothing after it runs", async () => {
    const node = newNode({ advertise: { exitCode: 1, stderr: "raptiformica: bad host\n" } });
    let registered = false;
    await assert.rejects(
      enlist({ node, reach, register: async () => ((registered = true), {}), keepOwnConfig: false }),
      /`raptiformica advertise 198\.18\.0\.9 --port 2222` failed on root@198\.18\.0\.9:22 \(exit 1\): raptiformica: bad host/,
    );
    assert.equal(registered, false);
    assert.equal(node.calls.length, 1);
  });

  it("the instance id is written again while the new member's KV does not answer (exit 75), and only then", async () => {
    const unavailable = { exitCode: 75, stderr: "raptiformica: the cluster's etcd did not answer (14 UNAVAILABLE: Connection dropped).\n" };
    // Answers on the third try.
    let tries = 0;
    const node = newNode({ config: () => (++tries < 3 ? unavailable : {}) });
    await meshIn(node, KEY, { afterMesh: true, uuid: "i-1" }, 1);
    assert.equal(node.calls.filter((c) => c.startsWith("config set")).length, 3);
    // Never answers: UUID_WRITE_TRIES tries, then an error that says so.
    const never = newNode({ config: unavailable });
    await assert.rejects(meshIn(never, KEY, { afterMesh: true, uuid: "i-1" }, 1), /failed on root@198\.18\.0\.9:22 \(4 tries, 0\.001 s apart\) \(exit 75\)/);
    assert.equal(never.calls.filter((c) => c.startsWith("config set")).length, UUID_WRITE_TRIES);
    // Any other failure is not tried again.
    const refused = newNode({ config: { exitCode: 1, stderr: "raptiformica: no.\n" } });
    await assert.rejects(meshIn(refused, KEY, { afterMesh: true, uuid: "i-1" }, 1), /\(exit 1\): raptiformica: no\./);
    assert.equal(refused.calls.filter((c) => c.startsWith("config set")).length, 1);
  });
});

describe("registering through members (registerViaMembers: Cluster.inject over a ViaMember)", () => {
  // A member's whole config has server, compute and platform keys (decodeFullConfig checks that).
  const SERVER = { "raptiformica/server/headless/a/bootstrap": "true", "raptiformica/compute/docker/headless/start_instance": "true", "raptiformica/platform/default/x": "y" };
  const ours = { ...SERVER, "raptiformica/ours": "yes" };
  const MINE = "a".repeat(64) as ClusterId;
  const THEIRS = "b".repeat(64) as ClusterId;
  /** A member of `cluster`: its identity names it (what a write checks first), its config is `config`. */
  const memberOf = (who: string, cluster: ClusterId, config: FlatMapping, replies: Record<string, Reply> = {}) =>
    member(who, config, { identity: { stdout: JSON.stringify({ publicKey: "cd".repeat(32), meshAddress: "200::2", clusterId: cluster }) }, ...replies });
  const unreachable = (who: string) =>
    member(who, {}, {
      identity: () => {
        throw new UserError(`Cannot reach ${who} over SSH (ssh: connect to host: Connection refused).`);
      },
    });
  const quiet: Logger = { verbose: false, debug: () => undefined, info: () => undefined, warn: () => undefined };
  const via = (members: NodeChannel[], fallback?: FlatMapping) => registerViaMembers(members, { newcomer: "root@198.18.0.9:22", mine: MINE, log: quiet, ...(fallback ? { fallback } : {}) });
  const INJECT = `inject --port 2222 --key ${KEY} -- 198.18.0.9 (60 s)`;

  it("a member that answers checks its cluster, runs inject with the node's key and hands its config; later members are not asked", async () => {
    const up = memberOf("root@m2:22", MINE, { ...SERVER, "raptiformica/y": "z" });
    const spare = memberOf("root@m3:22", MINE, {});
    const got = await via([up, spare], ours)(KEY, reach);
    assert.deepEqual(got, { ...SERVER, "raptiformica/y": "z" });
    assert.deepEqual(up.calls, ["identity --json (60 s)", INJECT, "config show --json (60 s)"]);
    assert.deepEqual(spare.calls, []);
  });

  it("a member of another cluster is never written to", async () => {
    const other = memberOf("root@m1:22", THEIRS, SERVER);
    await assert.rejects(via([other], ours)(KEY, reach), /nothing was sent to a member of another cluster/i);
    assert.deepEqual(other.calls, ["identity --json (60 s)"]);
  });

  it("a member that registered but cannot show its config: the operator's config is handed, and without one it is an error", async () => {
    const mute = () => memberOf("root@m1:22", MINE, {}, { config: { exitCode: 1 } });
    assert.deepEqual(await via([mute()], ours)(KEY, reach), ours);
    await assert.rejects(via([mute()])(KEY, reach), /root@198\.18\.0\.9:22 was registered, but the cluster's config could not be read back/);
  });

  it("a member that answers with an error is passed over like one that does not answer: the next member registers the node", async () => {
    const failing = memberOf("root@m1:22", MINE, SERVER, { inject: { exitCode: 1, stderr: "raptiformica: the cluster KV does not answer (no quorum)\n" } });
    const down = unreachable("root@m2:22");
    const up = memberOf("root@m3:22", MINE, { ...SERVER, "raptiformica/y": "z" });
    assert.deepEqual(await via([failing, down, up], ours)(KEY, reach), { ...SERVER, "raptiformica/y": "z" });
    assert.ok(failing.calls.includes(INJECT));
    assert.deepEqual(up.calls, ["identity --json (60 s)", INJECT, "config show --json (60 s)"]);
  });

  it("when every member fails, one error lists each member and why, says all were tried in turn, and a member of another cluster got nothing", async () => {
    const other = memberOf("root@m1:22", THEIRS, SERVER);
    const down = unreachable("root@m2:22");
    const failing = memberOf("root@m3:22", MINE, SERVER, { inject: { exitCode: 1, stderr: "raptiformica: no quorum\n" } });
    const spare = unreachable("root@m4:22");
    await assert.rejects(via([other, down, failing, spare], ours)(KEY, reach), (e: Error) => {
      assert.match(e.message, /^No member of the cluster could register root@198\.18\.0\.9:22 \(tried each of the 4 members, in turn\):/);
      assert.match(e.message, new RegExp(`root@m1:22: it is now a member of cluster ${THEIRS.slice(0, 16)}, not of cluster ${MINE.slice(0, 16)}`));
      assert.match(e.message, /root@m2:22: Cannot reach root@m2:22 over SSH/);
      assert.match(e.message, /root@m3:22: no quorum/);
      assert.match(e.message, /root@m4:22: Cannot reach root@m4:22 over SSH/);
      assert.match(e.message, /nothing was sent to a member of another cluster/i);
      assert.match(e.message, /run slave again once a member is reachable/);
      assert.doesNotMatch(e.message, /first 3/);
      return true;
    });
    assert.deepEqual(other.calls, ["identity --json (60 s)"]);
  });

  it("the config handed is read back from the member that registered the node, not from another one", async () => {
    // No CA in its config: only its identity tells it is in another cluster.
    const other = memberOf("root@m1:22", THEIRS, SERVER);
    const up = memberOf("root@m2:22", MINE, { ...SERVER, "raptiformica/y": "z" });
    assert.deepEqual(await via([other, up], ours)(KEY, reach), { ...SERVER, "raptiformica/y": "z" });
    assert.deepEqual(other.calls, ["identity --json (60 s)"]);
  });
});

describe("the members an error says were asked (onFirstChannel, onFirstMember)", () => {
  const refuse = (who: string) =>
    new ScriptedChannel(who, {
      identity: () => {
        throw new UserError(`Cannot reach ${who}.`);
      },
    });

  it("a member whose etcd did not answer (exit 75: a learner not promoted yet) is passed over for the next; its answer only when none did better", async () => {
    const learner = new ScriptedChannel("m1", { members: { exitCode: 75, stderr: "raptiformica: the cluster's etcd did not answer (etcdserver: rpc not supported for learner).\n" } });
    const voter = new ScriptedChannel("m2", { members: { stdout: "{}" } });
    const got = await onFirstChannel([learner, voter], ["members", "--json"]);
    assert.equal(got.member.who, "m2");
    assert.equal(got.out.exitCode, 0);
    const alone = await onFirstChannel([learner, new ScriptedChannel("m3", { members: { exitCode: 75 } })], ["members", "--json"]);
    assert.equal(alone.member.who, "m1", "every member's etcd is down: the first such answer is the answer");
    assert.equal(alone.out.exitCode, 75);
    assert.ok(memberFailure(alone.out, ["members", "--json"]) instanceof ClusterUnavailable, "and it is a ClusterUnavailable here too (exit 75)");
  });

  it("names the members tried: all of those given, or the first few of those the config names", async () => {
    await assert.rejects(onFirstChannel([refuse("m1"), refuse("m2")], ["identity", "--json"]), (e: Error) => {
      assert.match(e.message, /^No cluster member could be reached:\n {2}m1: Cannot reach m1\.\n {2}m2: Cannot reach m2\./);
      assert.match(e.message, /This machine asked each of the 2 members it was given, in turn\./);
      assert.doesNotMatch(e.message, /first 3/);
      return true;
    });
    const targets = [1, 2, 3, 4].map((i) => ({ host: `10.0.0.${i}`, port: 22 }));
    const asked: string[] = [];
    const check = {
      before: async (m: NodeChannel) => {
        asked.push(m.who);
        throw new UserError("unreachable");
      },
    };
    await assert.rejects(onFirstMember(async () => ({}) as SshSettings, targets, "raptiformica", ["identity", "--json"], 3, check), /This machine asked the first 3 of the 4 members its copy of the config names\./);
    assert.equal(asked.length, 3);
  });
});
