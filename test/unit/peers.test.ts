import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { Neighbour } from "../../src/mesh/neighbours.ts";
import { MAX_DIALED_PEERS, desiredPeers } from "../../src/node/mesh-service.ts";

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
