import type { LinkReport, Peering } from "../../consensus/links.ts";
import type { NodeRecord, Role } from "../../consensus/registry.ts";
import type { ClusterProblem, MemberRow, MemberStatus } from "../cluster/wire.ts";

/*
 * The mesh map's data: the members as `members` sees them (the same rows, from clusterMembers)
 * and one link per pair of members, merged from what both ends report of their peerings
 * (consensus/links.ts). What `GET /api/graph` answers and the page draws; the browser code
 * (src/web/map) imports these types only.
 */

/** A peering a member reports that is down, or whose other end is no member: shown in its details. */
export interface LoosePeering {
  /** The other end, when known (a configured peer that is down may not be). */
  readonly key?: string;
  /** The URI dialled, or where an inbound peering came from. */
  readonly remote: string;
  readonly up: boolean;
  readonly lastError?: string;
}

export interface MapNode {
  /** The member's public key (64 hex): stable across renames and moves. */
  readonly id: string;
  readonly name: string;
  readonly meshAddress: string;
  /** Where the others dial it (its advertised host), when it has one. */
  readonly host?: string;
  readonly status: MemberStatus;
  readonly role?: Role;
  /** Seconds since its agent registered it, as of `generatedAt`. */
  readonly uptimeSeconds?: number;
  /** From its node record: the raptiformica version its agent runs, its Yggdrasil major, its hostname. */
  readonly version?: string;
  readonly yggdrasilMajor?: string;
  readonly hostname?: string;
  /** The member serving this map. */
  readonly self: boolean;
  /** When its link report was read from Yggdrasil (ms since the epoch, its clock); absent: it reports none. */
  readonly linksReportedAt?: number;
  /** Peerings of its report that are down with no known member at the other end, or lead to no member. */
  readonly loosePeerings: readonly LoosePeering[];
}

/** What one end of a link reports of it (all its peerings with the other end, merged). */
export interface LinkEnd {
  readonly up: boolean;
  /** True: the other end dialled this one; false: this one dialled; null: its Yggdrasil does not say. */
  readonly inbound: boolean | null;
  readonly latencyMs?: number;
  readonly rxBytes?: number;
  readonly txBytes?: number;
  readonly uptimeSeconds?: number;
  readonly lastError?: string;
}

export interface MapLink {
  /** `<source>~<target>`: one link per pair of members. */
  readonly id: string;
  /** The two ends' public keys, source < target (the pair in a fixed order, not a direction). */
  readonly source: string;
  readonly target: string;
  /** Up as soon as either end reports a peering with the other up. */
  readonly up: boolean;
  /** The mean of the round trips the ends measured, ms; absent when neither gives one. */
  readonly latencyMs?: number;
  /** Bytes both ways as the end that counted more reports them (both count the same traffic). */
  readonly bytes?: number;
  /** The shortest time either end has had it up, seconds. */
  readonly uptimeSeconds?: number;
  /** Each reporting end's view, by its public key (one or both ends). */
  readonly ends: Readonly<Record<string, LinkEnd>>;
}

export interface MapGraph {
  /** Format version of this answer. */
  readonly v: 1;
  /** When the server read the KV, ms since the epoch (its clock). */
  readonly generatedAt: number;
  /** The public key of the member serving the map, when it knows it. */
  readonly self?: string;
  readonly nodes: readonly MapNode[];
  readonly links: readonly MapLink[];
  /** How many members wrote a link report (0: none does, so no link can be shown). */
  readonly reporting: number;
  /** What `members` lists as problems, and link reports that could not be read. */
  readonly problems: readonly ClusterProblem[];
}

/** The host part of a peering URI (`tcp://h:p`, `tls://[v6]:p`, `quic://h:p?x`), lowercase. Pure. */
export function uriHost(uri: string): string | undefined {
  const rest = uri.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/[/?#].*$/, "");
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    return end > 1 ? rest.slice(1, end).toLowerCase() : undefined;
  }
  const colon = rest.lastIndexOf(":");
  const host = colon >= 0 ? rest.slice(0, colon) : rest;
  return host === "" ? undefined : host.toLowerCase();
}

function mergeEnd(peerings: readonly Peering[]): LinkEnd {
  const up = peerings.filter((p) => p.up);
  const from = up.length > 0 ? up : peerings;
  const latencies = from.map((p) => p.latencyMs).filter((x): x is number => x !== undefined);
  const sum = (f: (p: Peering) => number | undefined): number | undefined => {
    const xs = from.map(f).filter((x): x is number => x !== undefined);
    return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) : undefined;
  };
  const uptimes = up.map((p) => p.uptimeSeconds).filter((x): x is number => x !== undefined);
  const lastError = peerings.find((p) => !p.up && p.lastError)?.lastError;
  const rx = sum((p) => p.rxBytes);
  const tx = sum((p) => p.txBytes);
  return {
    up: up.length > 0,
    inbound: from[0]?.inbound ?? null,
    ...(latencies.length > 0 ? { latencyMs: Math.min(...latencies) } : {}),
    ...(rx !== undefined ? { rxBytes: rx } : {}),
    ...(tx !== undefined ? { txBytes: tx } : {}),
    ...(uptimes.length > 0 ? { uptimeSeconds: Math.max(...uptimes) } : {}),
    ...(lastError && up.length === 0 ? { lastError } : {}),
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function mergeLink(source: string, target: string, ends: Map<string, LinkEnd>): MapLink {
  const views = [...ends.values()];
  const latencies = views.map((e) => e.latencyMs).filter((x): x is number => x !== undefined);
  const totals = views.map((e) => (e.rxBytes ?? 0) + (e.txBytes ?? 0)).filter((_, i) => views[i]?.rxBytes !== undefined || views[i]?.txBytes !== undefined);
  const uptimes = views.filter((e) => e.up).map((e) => e.uptimeSeconds).filter((x): x is number => x !== undefined);
  return {
    id: `${source}~${target}`,
    source,
    target,
    up: views.some((e) => e.up),
    ...(latencies.length > 0 ? { latencyMs: round2(latencies.reduce((a, b) => a + b, 0) / latencies.length) } : {}),
    ...(totals.length > 0 ? { bytes: Math.max(...totals) } : {}),
    ...(uptimes.length > 0 ? { uptimeSeconds: Math.min(...uptimes) } : {}),
    ends: Object.fromEntries([...ends.entries()].sort(([a], [b]) => a.localeCompare(b))),
  };
}

/**
 * The map's graph from the member rows of clusterMembers (the same statuses and roles as
 * `members`), the node records they came from (versions), and the members' link reports
 * (already parsed: consensus/links.ts parseLinkReport).
 *
 * Links: one per pair of members, from every peering either end reports with the other; a
 * peering without the other end's key (a configured peer that is down) is put to the member
 * whose host its URI names when exactly one does. A link is up when either end reports it up.
 * Peerings to no member, and down ones no member can be found for, are listed with the
 * reporting member (loosePeerings). A report of a key that is no member row is ignored.
 * Nodes keep the rows' order (by name); links are sorted by id. Pure; throws nothing.
 */
export function buildGraph(input: {
  readonly rows: readonly MemberRow[];
  readonly records?: readonly NodeRecord[];
  readonly reports: readonly LinkReport[];
  readonly problems?: readonly ClusterProblem[];
  readonly self?: string;
  readonly now: number;
}): MapGraph {
  const members = new Set(input.rows.map((r) => r.publicKey));
  const records = new Map((input.records ?? []).map((r) => [r.publicKey, r]));
  const byHost = new Map<string, string[]>();
  for (const r of input.rows) {
    const h = r.host?.toLowerCase().replace(/^\[|\]$/g, "");
    if (h) byHost.set(h, [...(byHost.get(h) ?? []), r.publicKey]);
  }
  // pair id → reporting end → that end's peerings with the other.
  const pairs = new Map<string, { source: string; target: string; peerings: Map<string, Peering[]> }>();
  const loose = new Map<string, LoosePeering[]>();
  const reported = new Map<string, number>();
  for (const report of input.reports) {
    const me = report.publicKey;
    if (!members.has(me)) continue;
    reported.set(me, report.reportedAt);
    for (const p of report.peerings) {
      let other = p.key;
      if (other === undefined) {
        const host = uriHost(p.remote);
        const candidates = host ? (byHost.get(host) ?? []).filter((k) => k !== me) : [];
        if (candidates.length === 1) other = candidates[0];
      }
      if (other === me) continue;
      if (other === undefined || !members.has(other)) {
        const list = loose.get(me) ?? [];
        list.push({ ...(other !== undefined ? { key: other } : {}), remote: p.remote, up: p.up, ...(p.lastError ? { lastError: p.lastError } : {}) });
        loose.set(me, list);
        continue;
      }
      const [source, target] = me < other ? [me, other] : [other, me];
      const id = `${source}~${target}`;
      const pair = pairs.get(id) ?? { source, target, peerings: new Map<string, Peering[]>() };
      pair.peerings.set(me, [...(pair.peerings.get(me) ?? []), p]);
      pairs.set(id, pair);
    }
  }
  const links = [...pairs.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, pair]) => mergeLink(pair.source, pair.target, new Map([...pair.peerings.entries()].map(([end, ps]) => [end, mergeEnd(ps)]))));
  const nodes: MapNode[] = input.rows.map((r) => {
    const rec = records.get(r.publicKey);
    const at = reported.get(r.publicKey);
    return {
      id: r.publicKey,
      name: r.name,
      meshAddress: r.meshAddress,
      ...(r.host ? { host: r.host } : {}),
      status: r.status,
      ...(r.role ? { role: r.role } : {}),
      ...(r.uptimeSeconds !== undefined ? { uptimeSeconds: r.uptimeSeconds } : {}),
      ...(rec?.version ? { version: rec.version } : {}),
      ...(rec?.yggdrasilMajor ? { yggdrasilMajor: rec.yggdrasilMajor } : {}),
      ...(rec?.hostname ? { hostname: rec.hostname } : {}),
      self: r.publicKey === input.self,
      ...(at !== undefined ? { linksReportedAt: at } : {}),
      loosePeerings: loose.get(r.publicKey) ?? [],
    };
  });
  return {
    v: 1,
    generatedAt: input.now,
    ...(input.self ? { self: input.self } : {}),
    nodes,
    links,
    reporting: reported.size,
    problems: [...(input.problems ?? [])],
  };
}

/**
 * The graph without what changes on its own as time passes (`generatedAt`, uptimes): two
 * graphs with the same key show the same cluster, so the server pushes a graph only when it
 * differs. Link uptimes and byte counts stay in: they move when traffic does, which the
 * width shows. Pure; throws nothing.
 */
export function graphKey(g: MapGraph): string {
  return JSON.stringify({ ...g, generatedAt: 0, nodes: g.nodes.map((n) => ({ ...n, uptimeSeconds: n.uptimeSeconds === undefined ? undefined : 0 })) });
}
