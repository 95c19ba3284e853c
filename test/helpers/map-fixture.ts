import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { FeedEvent } from "../../src/ops/map/feed.ts";
import type { MapGraph, MapLink, MapNode } from "../../src/ops/map/graph.ts";
import { mapRequestHandler } from "../../src/ops/map/server.ts";
import { createLogger } from "../../src/util/log.ts";
import { mulberry32 } from "../chaos/prng.ts";
import { ROOT } from "./cli.ts";

/** A member's public key made up from `seed` (64 lowercase hex). */
export function fakeKey(seed: string): string {
  return createHash("sha256").update(seed).digest("hex");
}

/**
 * A synthetic cluster of `n` members as the map's server would answer it: 5 voters (one the
 * leader), the rest proxies, about 3 % failed and 2 % left; each member peers with 2–3 others
 * (a ring plus random chords, as members dialling the neighbours they were given end up),
 * links with latencies and traffic spread over six orders of magnitude; member 0 serves it.
 */
export function syntheticGraph(n: number, seed = 1): MapGraph {
  const rnd = mulberry32(seed);
  const keys = Array.from({ length: n }, (_, i) => fakeKey(`member-${seed}-${i}`));
  const nodes: MapNode[] = keys.map((id, i) => {
    const status = i > 0 && rnd() < 0.03 ? "failed" : i > 0 && rnd() < 0.02 ? "left" : "alive";
    const role = i === 0 ? "leader" : i < 5 ? "voter" : "proxy";
    return {
      id,
      name: `node-${String(i).padStart(3, "0")}`,
      meshAddress: `200:${(i + 1).toString(16)}:${id.slice(0, 4)}::1`,
      host: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      status,
      role,
      ...(status === "alive" ? { uptimeSeconds: Math.floor(rnd() * 90_000), version: "0.1.0", yggdrasilMajor: "0.5", hostname: `host-${i}` } : {}),
      self: i === 0,
      loosePeerings: [],
    };
  });
  const pairs = new Set<string>();
  const add = (a: number, b: number) => {
    if (a === b) return;
    const [s, t] = [keys[a] as string, keys[b] as string].sort() as [string, string];
    pairs.add(`${s}~${t}`);
  };
  for (let i = 0; i < n; i++) {
    add(i, (i + 1) % n);
    if (rnd() < 0.6) add(i, Math.floor(rnd() * n));
  }
  const alive = new Set(nodes.filter((x) => x.status === "alive").map((x) => x.id));
  const links: MapLink[] = [...pairs].sort().map((id) => {
    const [source, target] = id.split("~") as [string, string];
    const up = alive.has(source) && alive.has(target);
    return {
      id,
      source,
      target,
      up,
      ...(up ? { latencyMs: Math.round((0.2 + rnd() * 120) * 100) / 100, bytes: Math.floor(10 ** (2 + rnd() * 7)), uptimeSeconds: Math.floor(rnd() * 80_000) } : {}),
      ends: { [source]: { up, inbound: false }, [target]: { up, inbound: true } },
    };
  });
  return { v: 1, generatedAt: Date.now(), self: keys[0], nodes, links, reporting: alive.size, problems: [] };
}

/**
 * The map's real request handler (ops/map/server.ts) on 127.0.0.1, serving the built page
 * (dist/map, `npm run build`) and a graph the caller sets: `push` sends a new one to every page
 * that follows, as the member's feed would. Close it with `close`.
 */
export async function serveGraph(initial: MapGraph): Promise<{ url: string; push(g: MapGraph): void; problem(message: string): void; followers(): number; close(): Promise<void> }> {
  let graph = initial;
  const followers = new Set<(e: FeedEvent) => void>();
  const feed = {
    current: async () => graph,
    subscribe(send: (e: FeedEvent) => void) {
      followers.add(send);
      send({ type: "graph", graph });
      return () => void followers.delete(send);
    },
  };
  const server: Server = createServer(mapRequestHandler({ feed, staticDir: join(ROOT, "dist", "map"), meshAddress: () => undefined, log: createLogger(false) }));
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    push(g) {
      graph = g;
      for (const f of followers) f({ type: "graph", graph: g });
    },
    problem(message) {
      for (const f of followers) f({ type: "problem", message });
    },
    followers: () => followers.size,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
