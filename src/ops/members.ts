import type { Etcd3 } from "etcd3";
import { describeUnusableKey, type FlatMapping } from "../config/flatten.ts";
import { alarmList, leaderOf, realMemberList, type EtcdAlarm, type EtcdMember, type TlsFiles } from "../consensus/client.ts";
import { neighbourEndpoints, peerUrl } from "../consensus/etcd-args.ts";
import { readKvConfig } from "../consensus/kv-config.ts";
import { readNodeRecords, type NodeRecord, type Role } from "../consensus/registry.ts";
import type { ClusterProblem, MemberRow, MemberStatus } from "./cluster/wire.ts";
import { resolveSettings } from "../consensus/settings.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import { evictionPass } from "../consensus/gone.ts";
import { memberSettings } from "../node/last-good-settings.ts";
import { SharedConfig } from "../node/shared-config.ts";
import { readStatus } from "../node/status.ts";
import type { Context } from "./context.ts";
import { isMember } from "./cluster/member.ts";
import { memberName, parseNeighbours, readNeighbours } from "../mesh/neighbours.ts";

export type { ClusterProblem, MemberRow, MemberStatus } from "./cluster/wire.ts";

/**
 * The etcd alarms as problems, each naming the member and what to do.
 * Pure; throws nothing.
 */
export function alarmProblems(alarms: readonly EtcdAlarm[], members: readonly EtcdMember[], revision: string, clientPort: number): ClusterProblem[] {
  return alarms.map((a) => {
    const name = members.find((m) => m.id === a.memberId)?.name || a.memberId;
    const etcdctl = `etcdctl --endpoints https://127.0.0.1:${clientPort} --cacert <cache>/node/etcd/tls/ca.crt --cert <cache>/node/etcd/tls/node.crt --key <cache>/node/etcd/tls/node.key`;
    const message =
      a.alarm === "NOSPACE"
        ? `etcd raised NOSPACE on member ${name}: its database reached the space quota, so the cluster KV refuses writes (node records, config changes) until space is freed. ` +
          `On a voter: \`${etcdctl} compact ${revision}\`, then \`defrag --cluster\` and \`alarm disarm\` with the same flags. Old history is compacted automatically; if this comes back, something writes far more than raptiformica does.`
        : `etcd raised ${a.alarm} on member ${name}: see etcd's log on that member (<cache>/node/log/etcd.log); \`${etcdctl} alarm list\` shows the alarms.`;
    return { kind: "alarm" as const, subject: name, message };
  });
}

function roleOf(meshAddress: string, peerPort: number, members: readonly EtcdMember[], leader: string, record?: NodeRecord): Role | undefined {
  const url = peerUrl(meshAddress, peerPort);
  const m = members.find((x) => x.peerURLs.includes(url));
  if (m) return m.isLearner ? "learner" : m.id === leader ? "leader" : "voter";
  return record ? "proxy" : undefined;
}

/**
 * The cluster as the KV sees it: neighbours joined with the live node records (alive = a record
 * exists, failed = none, left = left on purpose) and the etcd member list for roles; and the
 * problems to act on (keys no config can hold, bad cluster settings in the KV, etcd alarms);
 * and the node records the rows were made from (versions, hostnames: what the map shows besides).
 * @throws ClusterUnavailable when the KV (config, node records, leader, member list) does not answer in time.
 */
export async function clusterMembers(client: Etcd3, tls: TlsFiles, now = Date.now()): Promise<{ rows: MemberRow[]; problems: ClusterProblem[]; records: NodeRecord[] }> {
  const [{ mapping, unusable }, records, status] = await Promise.all([readKvConfig(client, 3000), readNodeRecords(client, 3000), leaderOf(client, 3000)]);
  // A bad value in the KV must not keep `members` from answering: show it instead.
  const { settings, problems: bad } = resolveSettings(mapping);
  const { peerPort, clientPort } = settings;
  const problems: ClusterProblem[] = unusable.map((u) => ({ kind: "key", subject: u.key, message: describeUnusableKey(u) }));
  problems.push(...bad.map((p) => ({ kind: "setting" as const, subject: p.key, message: p.message })));
  // A neighbour whose host or port yggdrasil cannot use is not dialled (the others are): say so.
  problems.push(...readNeighbours(mapping).problems.map((p) => ({ kind: "neighbour" as const, subject: p.key, message: p.message })));
  const [members, alarms] = await Promise.all([
    realMemberList(client, neighbourEndpoints(mapping, clientPort), tls, 3000),
    alarmList(client, 3000).catch((e: unknown) => errorMessage(e)),
  ]);
  if (typeof alarms === "string") problems.push({ kind: "unchecked", subject: "alarms", message: `Could not ask etcd for its alarms (${alarms}); run \`raptiformica members\` again.` });
  else problems.push(...alarmProblems(alarms.alarms, members, alarms.revision, clientPort));
  const rows: MemberRow[] = memberStatuses(mapping, records).map(({ record: rec, ...m }) => {
    const role = roleOf(m.meshAddress, peerPort, members, status.leader, rec);
    return { ...m, ...(role ? { role } : {}), ...(rec ? { uptimeSeconds: Math.max(0, Math.round((now - rec.startedAt) / 1000)) } : {}) };
  });
  return { rows, problems, records };
}

/** A member by name and status, as `members` shows it, with its live node record when it has one. */
export interface MemberStatusRow {
  readonly name: string;
  readonly publicKey: string;
  readonly meshAddress: string;
  readonly host?: string;
  readonly status: MemberStatus;
  readonly record?: NodeRecord;
}

/**
 * The members of the cluster by name and status: every neighbour of `mapping` joined with the
 * live node records (alive = a record, failed = none, left = left on purpose), then records of
 * nodes no neighbour entry names (alive). A member's name is the one its record gives, else its
 * neighbour entry's, else the first 16 hex digits of its key. Sorted by name, then key. The one
 * rule `members` and `links` name members by. Pure; throws nothing.
 */
export function memberStatuses(mapping: FlatMapping, records: readonly NodeRecord[]): MemberStatusRow[] {
  const byKey = new Map(records.map((r) => [r.publicKey, r]));
  const rows: MemberStatusRow[] = [];
  const seen = new Set<string>();
  for (const n of parseNeighbours(mapping)) {
    seen.add(n.publicKey);
    const rec = byKey.get(n.publicKey);
    rows.push({
      name: rec?.name ?? n.name ?? memberName(n.publicKey),
      publicKey: n.publicKey,
      meshAddress: n.meshAddress,
      ...(n.host ? { host: n.host } : {}),
      status: n.left ? "left" : rec ? "alive" : "failed",
      ...(rec ? { record: rec } : {}),
    });
  }
  for (const rec of records) {
    if (seen.has(rec.publicKey)) continue;
    seen.add(rec.publicKey);
    rows.push({ name: rec.name, publicKey: rec.publicKey, meshAddress: rec.meshAddress, ...(rec.host ? { host: rec.host } : {}), status: "alive", record: rec });
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name) || a.publicKey.localeCompare(b.publicKey));
}

/**
 * `members --evict` on a member: one eviction pass now (consensus/gone.ts), with the cluster's
 * grace period (meshnet/evict_after).
 * @throws UserError when this machine is no member, or its KV does not answer.
 * @throws ClusterUnavailable when the KV stops answering during the pass.
 */
export async function evictGone(ctx: Context): Promise<{ evicted: Awaited<ReturnType<typeof evictionPass>>; evictAfterSeconds: number }> {
  if (!isMember(ctx)) throw new UserError("members --evict runs on a cluster member (it changes the cluster's KV). Run it there, e.g. through `raptiformica ssh`.");
  const shared = await SharedConfig.open(ctx.config, ctx.node, ctx.log);
  try {
    if (!shared.client) throw new UserError("The cluster KV does not answer on this member (no quorum?); nothing can be evicted now.");
    const { mapping } = await shared.snapshot();
    const { evictAfterSeconds } = memberSettings(mapping, ctx.node);
    const self = readStatus(ctx.node.status)?.publicKey ?? "";
    return { evicted: await evictionPass(shared.client, { self, evictAfterMs: evictAfterSeconds * 1000 }), evictAfterSeconds };
  } finally {
    shared.close();
  }
}

/**
 * What the local cache knows when the cluster cannot be asked: neighbours, status unknown.
 * Pure; throws nothing.
 */
export function cachedMembers(mapping: FlatMapping): MemberRow[] {
  return parseNeighbours(mapping)
    .map((n) => ({
      name: n.name ?? memberName(n.publicKey),
      publicKey: n.publicKey,
      meshAddress: n.meshAddress,
      ...(n.host ? { host: n.host } : {}),
      status: (n.left ? "left" : "unknown") as MemberStatus,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Seconds as the `members` table shows them (`45s`, `3m2s`, `2h5m`, `1d3h`); `-` when unknown. Pure; throws nothing. */
export function formatUptime(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}
