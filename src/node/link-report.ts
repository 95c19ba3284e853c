import { LinkReportSchema, MAX_PEERINGS_PER_REPORT, type LinkReport, type Peering } from "../consensus/links.ts";
import { isPublicKeyHex } from "../mesh/yggdrasil/address.ts";
import type { PeerInfo } from "../mesh/yggdrasil/admin.ts";
import { peerUri, type PeerSpec } from "../mesh/yggdrasil/config.ts";

/*
 * What a member writes about its mesh links (consensus/links.ts) and when: the pure half of
 * node/step-links.ts.
 */

/**
 * When a link report is written (ms).
 *
 * - `minGapMs`: at most one write per 2 s. A link that flaps writes every 2 s at worst, and a
 *   change (a peering up or down, a new one, a new lease) is in the KV within 2 s of the peer
 *   loop seeing it (it reads getPeers every second).
 * - `refreshMs`: with nothing changed but counters (bytes, latency, uptime), one write per 30 s.
 *   The counters are for a person or a map looking at the mesh, where 30 s old is fresh enough;
 *   every report is a raft write and a watch event on every member, so 50 members at 30 s make
 *   under 2 writes a second cluster-wide.
 */
export const LINK_REPORT_TIMING = { minGapMs: 2_000, refreshMs: 30_000 } as const;

export type LinkReportTiming = { readonly [K in keyof typeof LINK_REPORT_TIMING]: number };

const MAX_TEXT = 512;

/** `value` under `name`, left out when undefined. */
function opt<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

function round(v: number | undefined, digits: number): number | undefined {
  if (v === undefined) return undefined;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * The public keys of configured peerings that are down, which 0.5 lists without one: a peering
 * whose `remote` is the URI of one of `configured` (without its ?key= query, as yggdrasil
 * writes it) gets that peer's key. Other peerings are returned as they are. Pure; throws nothing.
 */
export function withConfiguredKeys(peers: readonly PeerInfo[], configured: readonly PeerSpec[]): PeerInfo[] {
  if (!peers.some((p) => !p.publicKey)) return [...peers];
  const byRemote = new Map<string, string>();
  for (const spec of configured) {
    try {
      byRemote.set(peerUri(spec).split("?")[0] as string, spec.publicKey.toLowerCase());
    } catch {
      /* a peer no URI can be made for is not dialled: nothing lists it */
    }
  }
  return peers.map((p) => {
    const key = p.publicKey ? undefined : byRemote.get(p.remote);
    return key ? { ...p, publicKey: key } : p;
  });
}

/** One peering of a report, from what getPeers said (admin.ts PeerInfo). */
function peeringOf(p: PeerInfo): Peering {
  return {
    ...opt("key", isPublicKeyHex(p.publicKey) ? p.publicKey.toLowerCase() : undefined),
    remote: p.remote.slice(0, MAX_TEXT),
    inbound: p.inbound,
    up: p.up,
    ...opt("port", p.port),
    ...opt("latencyMs", round(p.latencyMs, 3)),
    ...opt("rxBytes", p.rxBytes === undefined ? undefined : Math.round(p.rxBytes)),
    ...opt("txBytes", p.txBytes === undefined ? undefined : Math.round(p.txBytes)),
    ...opt("rxBytesPerSecond", round(p.rxRate, 0)),
    ...opt("txBytesPerSecond", round(p.txRate, 0)),
    ...opt("uptimeSeconds", round(p.uptimeSeconds, 0)),
    ...opt("lastError", p.lastError?.slice(0, MAX_TEXT)),
    ...opt("lastErrorAgeSeconds", round(p.lastErrorAgeSeconds, 0)),
  };
}

/**
 * This member's link report (consensus/links.ts) from a getPeers answer (`peers`, both
 * versions: admin.ts normalises them), read at `readAt` (ms since the epoch). Numbers are
 * rounded (latency to the µs, seconds and bytes to units) so the report stays small; at most
 * MAX_PEERINGS_PER_REPORT peerings, up ones first. `treeParent` (0.5) is left out when unknown.
 * Pure.
 * @throws Error when the result is not a valid report (a `publicKey` that is not a key): a bug,
 *   never something a member's yggdrasil can cause.
 */
export function buildLinkReport(peers: readonly PeerInfo[], o: { readonly publicKey: string; readonly major: string; readonly readAt: number; readonly treeParent?: string | undefined }): LinkReport {
  const peerings = peers.map(peeringOf);
  // Up first, then by key and remote: the same peerings give the same report.
  const order = (p: Peering) => `${p.up ? 0 : 1}|${p.key ?? "~"}|${p.inbound === true ? 1 : 0}|${p.remote}`;
  peerings.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  return LinkReportSchema.parse({
    v: 1,
    publicKey: o.publicKey.toLowerCase(),
    reportedAt: Math.round(o.readAt),
    yggdrasilMajor: o.major,
    peerings: peerings.slice(0, MAX_PEERINGS_PER_REPORT),
    ...opt("treeParent", o.treeParent && isPublicKeyHex(o.treeParent) ? o.treeParent.toLowerCase() : undefined),
  });
}

/** What linkShape looks at of a report. */
export interface ShapeOf {
  readonly yggdrasilMajor: string;
  readonly peerings: readonly Pick<Peering, "key" | "remote" | "inbound" | "up" | "port">[];
}

/**
 * What of a report is written at once when it changes: which peerings there are (by key, or
 * by remote for one without), each one's direction, up/down and port (a new port is a peering
 * made again). Everything else (bytes, rates, latency, uptime, the last error and its age) are
 * counters, written at the slow refresh. The tree parent (0.5) is added to the shape by the
 * reporter (node/step-links.ts), which asks it every few seconds rather than every second.
 * Pure; throws nothing.
 */
export function linkShape(r: ShapeOf): string {
  const peerings = r.peerings.map((p) => `${p.key ?? p.remote}|${String(p.inbound)}|${p.up ? "up" : "down"}|${p.port ?? "-"}`).sort();
  return `${r.yggdrasilMajor}|${peerings.join(",")}`;
}

/**
 * linkShape of the report that `peers` would make (buildLinkReport), without making it: what
 * the agent compares at every look of the peer loop (every second), so it must cost next to
 * nothing. Pure; throws nothing.
 */
export function shapeOfPeers(peers: readonly PeerInfo[], major: string): string {
  return linkShape({
    yggdrasilMajor: major,
    peerings: peers.map((p) => ({ ...opt("key", isPublicKeyHex(p.publicKey) ? p.publicKey.toLowerCase() : undefined), remote: p.remote.slice(0, MAX_TEXT), inbound: p.inbound, up: p.up, ...opt("port", p.port) })),
  });
}

/** What the schedule decided: write now, or not (and when to look again: ms, or never by itself). */
export type LinkWriteDecision = { readonly write: true; readonly why: "first" | "lease" | "changed" | "refresh" } | { readonly write: false; readonly againInMs?: number };

/**
 * When this member writes its link report (see LINK_REPORT_TIMING): at once (but never twice
 * within `minGapMs`) when there is none on the current lease yet or its shape (linkShape)
 * changed; otherwise once `refreshMs` has passed since the last write. Nothing changed but
 * counters within `refreshMs`: no write. Pure but for its memory of the last write.
 */
export class LinkReportSchedule {
  private last?: { readonly at: number; readonly shape: string; readonly lease: number };

  constructor(private readonly t: LinkReportTiming = LINK_REPORT_TIMING) {}

  /** Whether to write a report of `shape` on lease generation `lease` at `now` (ms). */
  decide(now: number, shape: string, lease: number): LinkWriteDecision {
    const last = this.last;
    if (!last) return { write: true, why: "first" };
    const since = now - last.at;
    const why = last.lease !== lease ? "lease" : last.shape !== shape ? "changed" : since >= this.t.refreshMs ? "refresh" : undefined;
    if (why === undefined) return { write: false, againInMs: this.t.refreshMs - since };
    // A clock that went back is no reason to wait: the gap counts from now then.
    if (since >= 0 && since < this.t.minGapMs) return { write: false, againInMs: this.t.minGapMs - since };
    return { write: true, why };
  }

  /** A report of `shape` was written on lease generation `lease` at `now`. */
  wrote(now: number, shape: string, lease: number): void {
    this.last = { at: now, shape, lease };
  }
}
