import type { Etcd3 } from "etcd3";
import type { FlatMapping } from "../config/flatten.ts";
import { leaderOf, realMemberList, type EtcdMember, type TlsFiles } from "../consensus/client.ts";
import { neighbourEndpoints, peerUrl } from "../consensus/etcd-args.ts";
import { readKvMapping } from "../consensus/kv-config.ts";
import { readNodeRecords, type NodeRecord, type Role } from "../consensus/registry.ts";
import { clusterSettings } from "../consensus/settings.ts";
import { memberName, parseNeighbours } from "../mesh/neighbours.ts";

export type MemberStatus = "alive" | "failed" | "left" | "unknown";

export interface MemberRow {
  readonly name: string;
  readonly publicKey: string;
  readonly meshAddress: string;
  readonly host?: string;
  readonly status: MemberStatus;
  readonly role?: Role;
  readonly uptimeSeconds?: number;
}

function roleOf(meshAddress: string, peerPort: number, members: readonly EtcdMember[], leader: string, record?: NodeRecord): Role | undefined {
  const url = peerUrl(meshAddress, peerPort);
  const m = members.find((x) => x.peerURLs.includes(url));
  if (m) return m.isLearner ? "learner" : m.id === leader ? "leader" : "voter";
  return record ? "proxy" : undefined;
}

/**
 * The cluster as the KV sees it: neighbours joined with the live node records (alive = a record
 * exists, failed = none, left = left on purpose) and the etcd member list for roles.
 */
export async function clusterMembers(client: Etcd3, tls: TlsFiles, now = Date.now()): Promise<MemberRow[]> {
  const [mapping, records, status] = await Promise.all([readKvMapping(client, 3000), readNodeRecords(client, 3000), leaderOf(client, 3000)]);
  const { peerPort, clientPort } = clusterSettings(mapping);
  const members = await realMemberList(client, neighbourEndpoints(mapping, clientPort), tls, 3000);
  const byKey = new Map(records.map((r) => [r.publicKey, r]));
  const rows: MemberRow[] = [];
  const seen = new Set<string>();
  for (const n of parseNeighbours(mapping)) {
    seen.add(n.publicKey);
    const rec = byKey.get(n.publicKey);
    const status2: MemberStatus = n.left ? "left" : rec ? "alive" : "failed";
    const role = roleOf(n.meshAddress, peerPort, members, status.leader, rec);
    rows.push({
      name: rec?.name ?? n.name ?? memberName(n.publicKey),
      publicKey: n.publicKey,
      meshAddress: n.meshAddress,
      ...(n.host ? { host: n.host } : {}),
      status: status2,
      ...(role ? { role } : {}),
      ...(rec ? { uptimeSeconds: Math.max(0, Math.round((now - rec.startedAt) / 1000)) } : {}),
    });
  }
  for (const rec of records) {
    if (seen.has(rec.publicKey)) continue;
    const role = roleOf(rec.meshAddress, peerPort, members, status.leader, rec);
    rows.push({
      name: rec.name,
      publicKey: rec.publicKey,
      meshAddress: rec.meshAddress,
      ...(rec.host ? { host: rec.host } : {}),
      status: "alive",
      ...(role ? { role } : {}),
      uptimeSeconds: Math.max(0, Math.round((now - rec.startedAt) / 1000)),
    });
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name) || a.publicKey.localeCompare(b.publicKey));
}

/** What the local cache knows when the cluster cannot be asked: neighbours, status unknown. */
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

export function formatUptime(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}
