import type { Etcd3 } from "etcd3";
import { deadline } from "../consensus/client.ts";
import { readKvConfig } from "../consensus/kv-config.ts";
import { LINKS_PREFIX, parseLinkReport, type LinkReport, type Peering } from "../consensus/links.ts";
import { readNodeRecords } from "../consensus/registry.ts";
import { memberName } from "../mesh/neighbours.ts";
import { addressForKey } from "../mesh/yggdrasil/address.ts";
import { pickMember } from "./pick-member.ts";
import { memberStatuses } from "./members.ts";
import type { LinkEnd, LinkMember, LinkProblem, LinkRow, LinkView, LinksAnswer } from "./cluster/wire.ts";

/*
 * `raptiformica links`: the members' link reports (consensus/links.ts) merged into one row per
 * link, and the route between two members as Yggdrasil 0.5 forwards traffic.
 */

/**
 * Reads the members (as `members` names them), their link reports and the reports that are not
 * usable, and merges the reports into links (mergeLinks).
 * @throws Error (etcd's, or a deadline's) when the KV does not answer within `ms`.
 */
export async function readClusterLinks(client: Etcd3, ms = 3000): Promise<Pick<LinksAnswer, "members" | "links" | "problems">> {
  const res = await deadline("etcd read of the link reports", ms, client.getAll().prefix(LINKS_PREFIX).exec());
  // The records as of the same revision: a member is alive exactly while its report is there
  // (one lease), and two reads a moment apart could say otherwise around an expiry.
  const [{ mapping }, records] = await Promise.all([readKvConfig(client, ms), readNodeRecords(client, ms, res.header.revision)]);
  const raw = res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()] as const);
  const reports: LinkReport[] = [];
  const problems: LinkProblem[] = [];
  for (const [key, value] of [...raw].sort(([a], [b]) => a.localeCompare(b))) {
    const parsed = parseLinkReport(key, value);
    if (parsed.ok) reports.push(parsed.report);
    else problems.push({ subject: key, message: parsed.problem });
  }
  const members = linkMembers(memberStatuses(mapping, records), reports);
  return { members, links: mergeLinks(reports, members), problems };
}

/**
 * The members with what their reports say of them (when, which Yggdrasil, the tree parent); a
 * report from a node that is no member (no neighbour entry, no record) is not listed here,
 * its links are. Pure; throws nothing.
 */
export function linkMembers(members: readonly { readonly name: string; readonly publicKey: string; readonly status: LinkMember["status"] }[], reports: readonly LinkReport[]): LinkMember[] {
  const byKey = new Map(reports.map((r) => [r.publicKey, r]));
  return members.map((m) => {
    const r = byKey.get(m.publicKey);
    return {
      name: m.name,
      publicKey: m.publicKey,
      status: m.status,
      ...(r ? { reportedAt: r.reportedAt, yggdrasilMajor: r.yggdrasilMajor } : {}),
      ...(r?.treeParent ? { treeParent: r.treeParent } : {}),
    };
  });
}

function viewOf(by: string, reportedAt: number, p: Peering): LinkView {
  const { key: _key, remote: _remote, inbound: _inbound, ...numbers } = p;
  return { by, reportedAt, ...numbers };
}

/** Up ones first, the longest up first: the i-th peering of one end is matched with the other end's i-th. */
function byAge(a: { p: Peering }, b: { p: Peering }): number {
  return Number(b.p.up) - Number(a.p.up) || (b.p.uptimeSeconds ?? 0) - (a.p.uptimeSeconds ?? 0);
}

/**
 * One row per link from every member's report. Yggdrasil 0.5 says who dialled: the dialler's
 * outbound peering and the listener's inbound one are the same link (two members that dial
 * each other have two). 0.4 does not say, and keeps one peering per pair: the pair is the link.
 * Several peerings of one end for one link (a peering being made again) are matched in order,
 * up first and longest up first. A peering whose other end is known only by its address (down,
 * not configured by key) is a link to that address. Ends are named as `members` names them
 * (`members`), else by the first 16 hex digits of their key. Sorted by the ends' names. Pure;
 * throws nothing.
 */
export function mergeLinks(reports: readonly LinkReport[], members: readonly { readonly name: string; readonly publicKey: string }[]): LinkRow[] {
  const names = new Map(members.map((m) => [m.publicKey, m.name]));
  const end = (key: string): LinkEnd => ({ publicKey: key, name: names.get(key) ?? memberName(key) });
  interface Group {
    from: LinkEnd;
    to: LinkEnd;
    dialled: boolean;
    /** Reporting member → its peerings of this link. */
    byReporter: Map<string, { p: Peering; at: number }[]>;
  }
  const groups = new Map<string, Group>();
  const add = (id: string, make: () => Omit<Group, "byReporter">, by: string, p: Peering, at: number) => {
    let g = groups.get(id);
    if (!g) {
      g = { ...make(), byReporter: new Map() };
      groups.set(id, g);
    }
    const list = g.byReporter.get(by) ?? [];
    list.push({ p, at });
    g.byReporter.set(by, list);
  };
  for (const r of reports) {
    const self = r.publicKey;
    for (const p of r.peerings) {
      const other = p.key;
      if (other === self) continue;
      if (other === undefined) {
        const far: LinkEnd = { name: p.remote, remote: p.remote };
        const inbound = p.inbound === true;
        add(`${self}|${p.remote}|${String(p.inbound)}`, () => (inbound ? { from: far, to: end(self), dialled: true } : { from: end(self), to: far, dialled: p.inbound === false }), self, p, r.reportedAt);
      } else if (p.inbound === null) {
        const [a, b] = [end(self), end(other)].sort((x, y) => x.name.localeCompare(y.name) || (x.publicKey ?? "").localeCompare(y.publicKey ?? ""));
        add(`${[self, other].sort().join("|")}|pair`, () => ({ from: a as LinkEnd, to: b as LinkEnd, dialled: false }), self, p, r.reportedAt);
      } else {
        const [dialler, listener] = p.inbound ? [other, self] : [self, other];
        add(`${dialler}>${listener}`, () => ({ from: end(dialler), to: end(listener), dialled: true }), self, p, r.reportedAt);
      }
    }
  }
  const rows: LinkRow[] = [];
  for (const g of groups.values()) {
    // The `from` end's view first.
    const reporters = [...g.byReporter.keys()].sort((a, b) => Number(b === g.from.publicKey) - Number(a === g.from.publicKey));
    for (const list of g.byReporter.values()) list.sort(byAge);
    const count = Math.max(...[...g.byReporter.values()].map((l) => l.length));
    for (let i = 0; i < count; i++) {
      const views = reporters.flatMap((by) => {
        const x = g.byReporter.get(by)?.[i];
        return x ? [viewOf(by, x.at, x.p)] : [];
      });
      const ups = views.filter((v) => v.up).length;
      const status = ups === views.length ? "up" : ups === 0 ? "down" : "disputed";
      rows.push({ from: g.from, to: g.to, dialled: g.dialled, status, views });
    }
  }
  const order = (r: LinkRow) => `${r.from.name}\u0000${r.to.name}\u0000${r.from.publicKey ?? ""}\u0000${r.to.publicKey ?? ""}`;
  return rows.sort((a, b) => order(a).localeCompare(order(b)));
}

/** One member on a route, and the others that were as close to the destination at that hop. */
export interface RouteHop {
  readonly publicKey: string;
  readonly name: string;
  /** Yggdrasil picks one of these or this hop, which are as close (which one depends on its own order). */
  readonly alternatives: readonly string[];
}

export type Route = { readonly ok: true; readonly hops: readonly RouteHop[] } | { readonly ok: false; readonly why: string };

/**
 * The route traffic from member `fromKey` to member `toKey` takes as Yggdrasil 0.5 forwards it:
 * each member sends a packet on to the peer (an up link, either direction) that is closest to
 * the destination in the spanning tree, counted in tree hops, and only to one closer than
 * itself (ironwood's router). The tree is the `treeParent` each member reports. Where several
 * peers are equally close, the first by name is followed and the others are named as
 * alternatives. Yggdrasil 0.4 keeps no such tree (it routes by coordinates and keeps a session's
 * route on the sending member): no route then, and none when a member on the way has no
 * report, or the reports disagree (taken at different moments): `why` says which. Pure.
 */
export function routeBetween(answer: Pick<LinksAnswer, "members" | "links">, fromKey: string, toKey: string): Route {
  const byKey = new Map(answer.members.map((m) => [m.publicKey, m]));
  const name = (k: string) => byKey.get(k)?.name ?? memberName(k);
  for (const k of [fromKey, toKey]) {
    const m = byKey.get(k);
    if (!m?.reportedAt) return { ok: false, why: `${name(k)} has no link report (its agent is not running, or has not reported yet).` };
    if (m.yggdrasilMajor !== "0.5") {
      return { ok: false, why: `${name(k)} runs Yggdrasil ${m.yggdrasilMajor ?? "of an unknown version"}, which does not tell its spanning tree (0.4 routes by coordinates and keeps each route on the sending member): no route can be shown.` };
    }
  }
  if (fromKey === toKey) return { ok: true, hops: [{ publicKey: fromKey, name: name(fromKey), alternatives: [] }] };
  const parent = (k: string) => byKey.get(k)?.treeParent;
  // The destination's ancestors, with their distance from it.
  const depthFromDest = new Map<string, number>();
  for (let k: string | undefined = toKey, d = 0; k !== undefined && !depthFromDest.has(k); d++) {
    depthFromDest.set(k, d);
    const p = parent(k);
    if (p === undefined) return { ok: false, why: `The spanning tree above ${name(toKey)} is not known: ${name(k)} reports no tree parent.` };
    if (p === k) break;
    k = p;
  }
  const memo = new Map<string, number | undefined>();
  const distance = (k: string): number | undefined => {
    if (memo.has(k)) return memo.get(k);
    let steps = 0;
    let at: string | undefined = k;
    const seen = new Set<string>();
    while (at !== undefined && !depthFromDest.has(at) && !seen.has(at)) {
      seen.add(at);
      const p = parent(at);
      at = p === at ? undefined : p;
      steps++;
    }
    const d = at !== undefined && depthFromDest.has(at) ? steps + (depthFromDest.get(at) as number) : undefined;
    memo.set(k, d);
    return d;
  };
  const peers = new Map<string, Set<string>>();
  for (const l of answer.links) {
    const [a, b] = [l.from.publicKey, l.to.publicKey];
    if (l.status !== "up" || !a || !b) continue;
    for (const [x, y] of [[a, b], [b, a]] as const) peers.set(x, (peers.get(x) ?? new Set()).add(y));
  }
  const hops: RouteHop[] = [{ publicKey: fromKey, name: name(fromKey), alternatives: [] }];
  let at = fromKey;
  for (let i = 0; i < answer.members.length + 1 && at !== toKey; i++) {
    const here = distance(at);
    if (here === undefined) return { ok: false, why: `${name(at)} is not in the same spanning tree as ${name(toKey)} by the members' reports (a report may be older than a change of the tree); ask again in a few seconds.` };
    const closer = [...(peers.get(at) ?? [])]
      .map((k) => ({ k, d: distance(k) }))
      .filter((x): x is { k: string; d: number } => x.d !== undefined && x.d < here);
    if (closer.length === 0) return { ok: false, why: `No peer of ${name(at)} is closer to ${name(toKey)} in the spanning tree by the members' reports (one may be older than a change of the mesh); ask again in a few seconds.` };
    const best = Math.min(...closer.map((x) => x.d));
    const tied = closer
      .filter((x) => x.d === best)
      .map((x) => x.k)
      .sort((x, y) => name(x).localeCompare(name(y)) || x.localeCompare(y));
    const next = tied[0] as string;
    hops.push({ publicKey: next, name: name(next), alternatives: tied.slice(1).map(name) });
    at = next;
  }
  return at === toKey ? { ok: true, hops } : { ok: false, why: `The route from ${name(fromKey)} does not reach ${name(toKey)} by the members' reports; ask again in a few seconds.` };
}

/**
 * The member of `answer` that `query` names, as `raptiformica ssh NODE` resolves it
 * (ops/pick-member.ts: a name or mesh address, or the unique start of either), among the
 * members the cluster lists.
 * @throws UserError naming the candidates when several match, or listing the members when none does.
 */
export function pickLinkMember(answer: Pick<LinksAnswer, "members">, query: string): LinkMember {
  const named = answer.members.filter((m) => m.status !== "left").map((m) => ({ name: m.name, meshAddress: addressForKey(m.publicKey), sshPort: 22, publicKey: m.publicKey }));
  const picked = pickMember(named, query, "The list is the cluster's, as `raptiformica members` shows it.") as (typeof named)[number];
  return answer.members.find((m) => m.publicKey === picked.publicKey) as LinkMember;
}
