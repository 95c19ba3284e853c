/**
 * Pure topology and addressing rules of the lab, kept apart from the code that runs `ip` so
 * they can be reasoned about (and tested) without root.
 *
 * Everything lives in 198.18.0.0/15, the range RFC 2544 reserves for benchmarking: it is never
 * routed on the internet and unlikely to clash with whatever the host itself uses.
 *   - shared segment ("full"): 198.18.0.0/16, one address per node;
 *   - point-to-point links: 198.19.0.0/16 cut into /30s, one per link.
 */

export type Topology = "full" | "line" | "tree" | { links: readonly (readonly [number, number])[] };

export type Link = readonly [number, number];

export const SEGMENT_PREFIX_LEN = 16;
export const LINK_PREFIX_LEN = 30;

/** Host numbers per /24 of the segment: .1 to .254, so no node ever gets a .0 or .255 address. */
const HOSTS_PER_OCTET = 254;
export const MAX_SEGMENT_NODES = HOSTS_PER_OCTET * 256;
export const MAX_LINKS = (1 << 16) / 4;
/** A Linux bridge takes at most 1024 ports; well above what a 2-core box can run anyway. */
export const MAX_NODES = 1000;

/** Address of node `i` on the shared segment: n0 → 198.18.0.1, n253 → 198.18.0.254, n254 → 198.18.1.1. */
export function segmentAddress(i: number): string {
  if (!Number.isInteger(i) || i < 0 || i >= MAX_SEGMENT_NODES) throw new RangeError(`no segment address for node ${i}`);
  return `198.18.${Math.floor(i / HOSTS_PER_OCTET)}.${(i % HOSTS_PER_OCTET) + 1}`;
}

/** The two ends of link number `k` (its own /30): [lower-index node's, higher-index node's]. */
export function linkAddresses(k: number): [string, string] {
  if (!Number.isInteger(k) || k < 0 || k >= MAX_LINKS) throw new RangeError(`no subnet for link ${k}`);
  const base = k * 4;
  const third = base >> 8;
  const fourth = base & 255;
  return [`198.19.${third}.${fourth + 1}`, `198.19.${third}.${fourth + 2}`];
}

export function parentInTree(i: number): number {
  return (i - 1) >> 1;
}

/**
 * The point-to-point links of a topology with `n` nodes, each as [lower, higher], in a stable
 * order (link k keeps its subnet for the lab's lifetime). "full" has no links: it is one segment.
 */
export function topologyLinks(topology: Topology, n: number): Link[] {
  if (topology === "full") return [];
  if (topology === "line") return Array.from({ length: Math.max(0, n - 1) }, (_, i) => [i, i + 1] as const);
  if (topology === "tree") return Array.from({ length: Math.max(0, n - 1) }, (_, k) => [parentInTree(k + 1), k + 1] as const);
  const seen = new Set<string>();
  const out: Link[] = [];
  for (const [x, y] of topology.links) {
    out.push(checkLink(x, y, n, seen));
  }
  return out;
}

/** Validates one link against `n` nodes and the links already `seen`; returns it normalised. */
export function checkLink(x: number, y: number, n: number, seen: Set<string>): Link {
  for (const v of [x, y]) {
    if (!Number.isInteger(v) || v < 0 || v >= n) throw new RangeError(`link [${x}, ${y}]: node ${v} does not exist (nodes 0..${n - 1})`);
  }
  if (x === y) throw new RangeError(`link [${x}, ${y}] connects a node to itself`);
  const link = x < y ? ([x, y] as const) : ([y, x] as const);
  const key = `${link[0]}-${link[1]}`;
  if (seen.has(key)) throw new RangeError(`link [${x}, ${y}] is listed twice`);
  seen.add(key);
  return link;
}

/** Parses "full" | "line" | "tree" | "0-1,1-2" (the CLI's spelling of a custom topology). */
export function parseTopology(text: string): Topology {
  if (text === "full" || text === "line" || text === "tree") return text;
  const links = text.split(",").map((pair) => {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(pair);
    if (!m) throw new Error(`topology ${JSON.stringify(text)}: expected full, line, tree or links like "0-1,1-2"`);
    return [Number(m[1]), Number(m[2])] as const;
  });
  return { links };
}

export function describeTopology(t: Topology): string {
  return typeof t === "string" ? t : t.links.map(([a, b]) => `${a}-${b}`).join(",");
}
