import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { neighbourMapping, neighbourPrefix, parseNeighbours, readNeighbours, type Neighbour } from "../../src/mesh/neighbours.ts";
import { renderConfig } from "../../src/mesh/yggdrasil/config.ts";
import { MAX_DIALED_PEERS, desiredPeers, planPeers } from "../../src/node/mesh-service.ts";

const key = (i: number) => i.toString(16).padStart(64, "0");
const neighbour = (i: number, host = true): Neighbour =>
  ({ publicKey: key(i), meshAddress: `200::${i}`, ...(host ? { host: `198.18.0.${i}` } : {}), sshPort: 22, yggdrasilPort: 4863 }) as Neighbour;

describe("which neighbours a node dials", () => {
  it("all of them in a small cluster, never itself, never the hostless", () => {
    const ns = [1, 2, 3, 4].map((i) => neighbour(i)).concat(neighbour(5, false));
    assert.deepEqual(desiredPeers(ns, key(1)).map((p) => p.publicKey), [key(2), key(3), key(4)]);
  });

  it("beyond the cap, a stable pick per node; 50 nodes make one connected graph of few links", () => {
    const ns = Array.from({ length: 50 }, (_, i) => neighbour(i + 1));
    const picks = new Map(ns.map((n) => [n.publicKey, desiredPeers(ns, n.publicKey).map((p) => p.publicKey)]));
    for (const [, p] of picks) assert.ok(p.length >= MAX_DIALED_PEERS && p.length <= 3 * MAX_DIALED_PEERS, `${p.length} peers`);
    // Every link is dialled from both ends, so a newcomer is dialled by the nodes its own
    // (refused) dials go to.
    for (const [a, p] of picks) for (const b of p) assert.ok(picks.get(b)?.includes(a), `${a.slice(-2)} dials ${b.slice(-2)} but not back`);
    // The same input gives the same pick (a restart does not reshuffle the mesh).
    assert.deepEqual(desiredPeers(ns, key(7)), desiredPeers([...ns].reverse(), key(7)));
    // Undirected links, and every node reachable from node 1.
    const links = new Set<string>();
    for (const [a, p] of picks) for (const b of p) links.add(a < b ? `${a}-${b}` : `${b}-${a}`);
    assert.ok(links.size < (50 * 49) / 2 / 3, `${links.size} links`);
    const seen = new Set([key(1)]);
    const queue = [key(1)];
    while (queue.length > 0) {
      const a = queue.shift() as string;
      for (const l of links) {
        const [x, y] = l.split("-") as [string, string];
        const other = x === a ? y : y === a ? x : undefined;
        if (other && !seen.has(other)) {
          seen.add(other);
          queue.push(other);
        }
      }
    }
    assert.equal(seen.size, 50);
  });
});

// A real key pair for rendering a config.
const PRIV = "2d3306c9ea6fcf73179d378137998908e5c48ec848131b61516555318a9903ee7d87366ec14985899f754126115e379b1d99e391ca23f2add6da55ba7486081c";
const SELF = PRIV.slice(64);

/** A cluster KV as the agent reads it: one neighbour entry per host, keys 1, 2, 3… */
function kv(entries: Record<string, string>[]): Record<string, string> {
  const m: Record<string, string> = {};
  entries.forEach((fields, i) => {
    const p = neighbourPrefix(key(i + 1));
    m[`${p}public_key`] = key(i + 1);
    m[`${p}mesh_address`] = `200::${i + 1}`;
    for (const [f, v] of Object.entries(fields)) m[`${p}${f}`] = v;
  });
  return m;
}

describe("neighbour entries from the cluster KV", () => {
  const mapping = kv([
    { host: "198.18.0.1" },
    { host: "a_b" },
    { host: "node.example.org" },
    { host: "h:22" },
    { host: "[::1]:22" },
    { host: "$(touch /tmp/x)" },
    { host: "[2001:DB8::9]" },
    { host: "2001:db8::8", yggdrasil_port: "4864" },
    { host: "198.18.0.9", yggdrasil_port: "99999" },
  ]);

  it("a bad host does not stop the config from being written: the others become peers", () => {
    // Before, the first bad host made renderConfig throw, and the node kept no peer at all.
    const peers = desiredPeers(parseNeighbours(mapping), SELF);
    const text = renderConfig({ major: "0.5", privateKey: PRIV, publicKey: SELF, listenPort: 4863, peers, allowedPublicKeys: [], adminSocket: "/run/y.sock" });
    const uris = (JSON.parse(text) as { Peers: string[] }).Peers;
    assert.deepEqual(uris, [
      `tcp://198.18.0.1:4863?key=${key(1)}`,
      `tcp://[2001:db8::8]:4864?key=${key(8)}`,
      `tcp://[2001:db8::9]:4863?key=${key(7)}`,
      `tcp://node.example.org:4863?key=${key(3)}`,
    ]);
  });

  it("each bad field is reported once, naming its key, value and what to do; the neighbour stays allowed in", () => {
    const plan = planPeers(mapping, SELF);
    assert.equal(plan.problems.length, 5, plan.problems.join("\n"));
    const about = (i: number) => plan.problems.filter((p) => p.includes(neighbourPrefix(key(i))));
    assert.match(about(2)[0] ?? "", /host: "a_b" is not a hostname or IP address: it contains "_".*not dialled.*raptiformica advertise HOST/);
    assert.match(about(4)[0] ?? "", /host: "h:22" .*has a port \(22\)/);
    assert.match(about(5)[0] ?? "", /host: "\[::1\]:22" .*has a port \(22\)/);
    assert.match(about(6)[0] ?? "", /host: "\$\(touch \/tmp\/x\)" .*contains/);
    assert.match(about(9)[0] ?? "", /yggdrasil_port: "99999" is not a TCP port/);
    // Still neighbours (their keys are allowed in, so they can dial this node), just not dialled.
    assert.equal(plan.neighbours.length, 9);
    assert.deepEqual(plan.peers.map((p) => p.publicKey).sort(), [key(1), key(3), key(7), key(8)]);
    // Hosts are stored in one form: IPv6 bare and canonical.
    assert.equal(plan.neighbours.find((n) => n.publicKey === key(7))?.host, "2001:db8::9");
  });
});

describe("neighbours and peers worked out once per frozen mapping", () => {
  const entries = (n: number) => Object.assign({}, ...Array.from({ length: n }, (_, i) => neighbourMapping(neighbour(i + 1)))) as Record<string, string>;

  it("a frozen mapping (the agent's config copy) is read once; another mapping, or one changed in place, is read again", () => {
    const frozen = Object.freeze(entries(12));
    assert.equal(readNeighbours(frozen), readNeighbours(frozen), "the same reading");
    assert.equal(planPeers(frozen, key(1)), planPeers(frozen, key(1)), "the same plan");
    assert.notEqual(planPeers(frozen, key(2)), planPeers(frozen, key(1)), "another node's plan is its own");
    assert.deepEqual(planPeers(frozen, key(2)).peers, planPeers({ ...frozen }, key(2)).peers);
    // Not frozen: the read-modify-write callbacks change their mapping in place between readings.
    const open = entries(3);
    assert.equal(parseNeighbours(open).length, 3);
    Object.assign(open, neighbourMapping(neighbour(4)));
    assert.equal(parseNeighbours(open).length, 4, "read again after the change");
  });
});

