import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { EtcdMember } from "../../src/consensus/client.ts";
import { planConsensus, type ConsensusPlan, type PlanInput } from "../../src/consensus/plan.ts";

/*
 * planConsensus is checked against every input that changes its answer: whether this node has
 * an etcd data dir, whether a cluster token is known, whether a member list answered and, if
 * so, every list of up to three other members of each kind (started voter, started learner,
 * unstarted learner, unstarted voter) with this node absent or present in each of its own
 * kinds and at each position; and, when no member list answered, every ordering of this node's
 * key among up to three other keys. The expected plan is stated below from the rule (in terms
 * of the fixtures, not of the code under test), and the URLs are written out by hand.
 */

const CLIENT_PORT = 2379;
type Kind = "voter" | "learner" | "unstarted-learner" | "unstarted-voter";
const KINDS: readonly Kind[] = ["voter", "learner", "unstarted-learner", "unstarted-voter"];
const started = (k: Kind) => k === "voter" || k === "learner";

interface Fixture {
  readonly kind: Kind;
  readonly me: boolean;
  readonly n: number;
  readonly member: EtcdMember;
}

const ME = 9;
const myPeerUrl = `https://[200::${ME}]:2380`;
const myName = `node-${ME}`;

function fixture(kind: Kind, n: number): Fixture {
  return {
    kind,
    me: n === ME,
    n,
    member: {
      id: `id${n}`,
      // etcd reports an empty name until the member has started.
      name: started(kind) ? `node-${n}` : "",
      peerURLs: [`https://[200::${n}]:2380`],
      clientURLs: started(kind) ? [`https://[200::${n}]:2379`] : [],
      isLearner: kind === "learner" || kind === "unstarted-learner",
    },
  };
}

/** Every sequence of length 0..max over the kinds. */
function allSequences(max: number): Kind[][] {
  const out: Kind[][] = [[]];
  let frontier: Kind[][] = [[]];
  for (let len = 1; len <= max; len++) {
    frontier = frontier.flatMap((s) => KINDS.map((k) => [...s, k]));
    out.push(...frontier);
  }
  return out;
}

/** Member lists: up to three others, and this node absent or inserted as any kind at any position. */
function memberLists(): Fixture[][] {
  const lists: Fixture[][] = [];
  for (const kinds of allSequences(3)) {
    const others = kinds.map((k, i) => fixture(k, i + 1));
    lists.push(others);
    for (const mine of KINDS) {
      for (let pos = 0; pos <= others.length; pos++) lists.push([...others.slice(0, pos), fixture(mine, ME), ...others.slice(pos)]);
    }
  }
  return lists;
}

/** The rule, written from the design brief and the etcd membership model. */
function expectedWithMembers(hasData: boolean, list: readonly Fixture[]): ConsensusPlan {
  const mine = list.find((f) => f.me);
  if (hasData) return mine ? { kind: "member" } : { kind: "rejoin", reason: "this member was removed from the cluster" };
  if (mine) {
    // Joining with --initial-cluster-state existing: this node under its own name, and every
    // other member etcd can name (a member has a name once it has started).
    const initialCluster = new Map<string, string>();
    for (const f of list) if (!f.me && started(f.kind)) initialCluster.set(`node-${f.n}`, `https://[200::${f.n}]:2380`);
    initialCluster.set(myName, myPeerUrl);
    return { kind: "join-as-member", initialCluster };
  }
  // Not a member: a grpc-proxy to the started voters' client ports (never to a learner, which
  // does not serve, nor to an unstarted member, which does not answer).
  const endpoints = list.filter((f) => f.kind === "voter").map((f) => `https://[200::${f.n}]:${CLIENT_PORT}`);
  if (endpoints.length === 0) return { kind: "wait", reason: "the cluster has no started voter to proxy to" };
  return { kind: "proxy", endpoints };
}

function input(p: Partial<PlanInput>): PlanInput {
  return {
    myName,
    myPeerUrl,
    myPublicKey: "m".repeat(64),
    clientPort: CLIENT_PORT,
    hasData: false,
    clusterKnown: false,
    otherNeighbours: [],
    ...p,
  };
}

function describeList(list: readonly Fixture[]): string {
  return `[${list.map((f) => `${f.me ? "me:" : ""}${f.kind}`).join(", ")}]`;
}

describe("consensus plan, every member list", () => {
  it("matches the rule for each data-dir state, cluster-known state and member list", () => {
    const lists = memberLists();
    let cases = 0;
    const seen = new Set<string>();
    for (const list of lists) {
      for (const hasData of [false, true]) {
        for (const clusterKnown of [false, true]) {
          // The neighbour keys must not matter once a member list answered.
          for (const otherNeighbours of [[], ["0".repeat(64)], ["z".repeat(64)]]) {
            const got = planConsensus(input({ hasData, clusterKnown, otherNeighbours, members: list.map((f) => f.member) }));
            assert.deepEqual(got, expectedWithMembers(hasData, list), `hasData=${hasData} clusterKnown=${clusterKnown} members=${describeList(list)}`);
            seen.add(got.kind);
            cases++;
          }
        }
      }
    }
    // The enumeration reaches every plan a member list can lead to.
    assert.deepEqual([...seen].sort(), ["join-as-member", "member", "proxy", "rejoin", "wait"]);
    assert.ok(cases > 4000, `only ${cases} cases`);
  });

  it("finds this node by its peer URL, not by its name (an unstarted member has none)", () => {
    const list = [fixture("voter", 1), fixture("unstarted-learner", ME)];
    const plan = planConsensus(input({ members: list.map((f) => f.member) }));
    assert.equal(plan.kind, "join-as-member");
    // A member that took this node's name but not its peer URL is someone else.
    const impostor: EtcdMember = { ...fixture("voter", 2).member, name: myName };
    assert.equal(planConsensus(input({ hasData: true, members: [fixture("voter", 1).member, impostor] })).kind, "rejoin");
  });

  it("a member with data runs it while no member list answered, whatever else is known", () => {
    for (const clusterKnown of [false, true]) {
      for (const otherNeighbours of [[], ["0".repeat(64)], ["z".repeat(64)]]) {
        assert.deepEqual(planConsensus(input({ hasData: true, clusterKnown, otherNeighbours })), { kind: "member" });
      }
    }
  });
});

describe("consensus plan, no member list: who bootstraps", () => {
  const KEYS = ["1", "3", "5", "7"].map((c) => c.repeat(64));

  /** Every subset of the key pool, as the known machines (each one also knows itself). */
  function subsets<T>(xs: readonly T[]): T[][] {
    return xs.reduce<T[][]>((acc, x) => acc.concat(acc.map((s) => [...s, x])), [[]]);
  }

  it("without a cluster token exactly one machine of any set bootstraps: the one with the lowest key", () => {
    for (const machines of subsets(KEYS).filter((s) => s.length > 0)) {
      const plans = machines.map((me) =>
        planConsensus(input({ myPublicKey: me, otherNeighbours: machines.filter((k) => k !== me) })),
      );
      const bootstrappers = machines.filter((_, i) => plans[i]?.kind === "bootstrap");
      // The lowest key, compared as text (hex keys of equal length sort as numbers do).
      const lowest = machines.reduce((a, b) => (b < a ? b : a));
      assert.deepEqual(bootstrappers, [lowest], `machines ${machines.map((k) => k[0]).join("")}`);
      for (let i = 0; i < machines.length; i++) {
        if (machines[i] === lowest) continue;
        assert.deepEqual(plans[i], { kind: "wait", reason: `waiting for ${lowest.slice(0, 16)} to bootstrap the cluster` });
      }
    }
  });

  it("the order in which the neighbours are listed does not matter", () => {
    const me = KEYS[1] as string;
    const others = [KEYS[3], KEYS[0], KEYS[2]] as string[];
    const perms = [others, [...others].reverse(), [others[1], others[2], others[0]] as string[]];
    for (const p of perms) assert.equal(planConsensus(input({ myPublicKey: me, otherNeighbours: p })).kind, "wait");
    assert.equal(planConsensus(input({ myPublicKey: KEYS[0], otherNeighbours: [KEYS[3], KEYS[2], KEYS[1]] as string[] })).kind, "bootstrap");
  });

  it("nobody bootstraps once a cluster was made, nor when this node has data", () => {
    for (const machines of subsets(KEYS).filter((s) => s.length > 0)) {
      for (const me of machines) {
        const others = machines.filter((k) => k !== me);
        assert.deepEqual(planConsensus(input({ myPublicKey: me, otherNeighbours: others, clusterKnown: true })), {
          kind: "wait",
          reason: "no cluster member is reachable over the mesh yet",
        });
        assert.deepEqual(planConsensus(input({ myPublicKey: me, otherNeighbours: others, hasData: true })), { kind: "member" });
      }
    }
  });

  it("never bootstraps while any member list answered", () => {
    for (const list of memberLists()) {
      for (const hasData of [false, true]) {
        const plan = planConsensus(input({ myPublicKey: "0".repeat(64), hasData, members: list.map((f) => f.member) }));
        assert.notEqual(plan.kind, "bootstrap", describeList(list));
      }
    }
  });
});
