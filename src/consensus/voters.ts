import type { Etcd3 } from "etcd3";
import { deadline, memberList, type EtcdMember } from "./client.ts";
import { peerUrl } from "./etcd-args.ts";
import type { NodeRecord } from "./registry.ts";
import { KEYS, targetVoters } from "./settings.ts";

/** One step of the voter manager: at most one membership change per call. */
export type VoterAction =
  | { readonly kind: "none" }
  | { readonly kind: "promote"; readonly member: EtcdMember }
  | { readonly kind: "add-learner"; readonly node: NodeRecord; readonly peerUrl: string }
  | { readonly kind: "remove-stale-learner"; readonly member: EtcdMember }
  | { readonly kind: "remove-spare-learner"; readonly member: EtcdMember }
  | { readonly kind: "remove-dead-learner"; readonly member: EtcdMember; readonly goneMs: number }
  | { readonly kind: "remove-dead-voter"; readonly member: EtcdMember; readonly goneMs: number };

export interface VoterInput {
  readonly members: readonly EtcdMember[];
  readonly alive: readonly NodeRecord[];
  readonly maxVoters: number;
  readonly peerPort: number;
  /** How long each unstarted learner has been waiting, by member id (ms). */
  readonly learnerAgeMs: ReadonlyMap<string, number>;
  readonly learnerStartTimeoutMs: number;
  /** How long each voter has had no live node record, by member id (ms); absent = it has one. */
  readonly voterGoneMs: ReadonlyMap<string, number>;
  /** How long each learner has had no live node record, by member id (ms); absent = it has one. */
  readonly learnerGoneMs?: ReadonlyMap<string, number>;
  readonly deadVoterGraceMs: number;
}

/** Members (voters and learners) with no live node record behind them. */
export function membersWithoutRecord(members: readonly EtcdMember[], alive: readonly NodeRecord[], peerPort: number): EtcdMember[] {
  const live = new Set(alive.map((n) => peerUrl(n.meshAddress, peerPort)));
  return members.filter((m) => !m.peerURLs.some((u) => live.has(u)));
}

/** Voters (not learners) with no live node record behind them. */
export function votersWithoutRecord(members: readonly EtcdMember[], alive: readonly NodeRecord[], peerPort: number): EtcdMember[] {
  return membersWithoutRecord(members, alive, peerPort).filter((m) => !m.isLearner);
}

/**
 * One step towards a healthy voter set, at most one membership change per call:
 * 1. a voter whose node record has been gone longer than the grace period is removed — only
 *    while the voters that are alive still form a majority of the smaller set, so a removal
 *    never costs quorum (and a node that is only slow gets the grace period to come back);
 * 2. a learner is promoted once it has started (etcd refuses until it caught up) and the voters
 *    are fewer than the target — never while a voter without a record still counts, so the set
 *    never grows to an even size around a dead voter; removed if it never starts; removed again
 *    when it is not needed (every voter has its record back and the voters are at the target:
 *    the voter was only slow); removed when its own node record has been gone for the grace
 *    period (it died while catching up: etcd would never let it be promoted, and while it
 *    stands no other learner can be added — etcd allows one);
 * 3. the set grows towards the target (largest odd number ≤ alive nodes, ≤ max_voters) by
 *    adding one learner — the longest-running alive non-member. Voters without a record do not
 *    count here: the replacement of a voter whose record is gone joins as a learner at once and
 *    catches up during the grace period (a learner has no vote, so this never changes quorum),
 *    and is promoted as soon as the dead voter is removed.
 * Dead voters go first: while one is counted, the cluster needs more votes for every commit.
 */
export function nextVoterAction(p: VoterInput): VoterAction {
  const voterCount = p.members.filter((m) => !m.isLearner).length;
  const withoutRecord = votersWithoutRecord(p.members, p.alive, p.peerPort);
  const dead = withoutRecord
    .map((member) => ({ member, goneMs: p.voterGoneMs.get(member.id) ?? 0 }))
    .filter((d) => d.goneMs >= p.deadVoterGraceMs)
    .sort((a, b) => b.goneMs - a.goneMs)[0];
  if (dead && voterCount > 1) {
    const aliveVoters = voterCount - withoutRecord.length;
    if (aliveVoters >= Math.floor((voterCount - 1) / 2) + 1) return { kind: "remove-dead-voter", member: dead.member, goneMs: dead.goneMs };
  }
  const target = targetVoters(p.alive.length, p.maxVoters);
  const learner = p.members.find((m) => m.isLearner);
  if (learner) {
    const learnerGoneMs = p.learnerGoneMs?.get(learner.id);
    if (learnerGoneMs !== undefined && learnerGoneMs >= p.deadVoterGraceMs) return { kind: "remove-dead-learner", member: learner, goneMs: learnerGoneMs };
    if (voterCount < target) {
      if (learner.name) return { kind: "promote", member: learner };
    } else if (withoutRecord.length === 0) {
      return { kind: "remove-spare-learner", member: learner };
    }
    if (!learner.name && (p.learnerAgeMs.get(learner.id) ?? 0) > p.learnerStartTimeoutMs) return { kind: "remove-stale-learner", member: learner };
    return { kind: "none" };
  }
  if (voterCount - withoutRecord.length >= target) return { kind: "none" };
  const memberUrls = new Set(p.members.flatMap((m) => m.peerURLs));
  const candidate = [...p.alive]
    .filter((n) => !memberUrls.has(peerUrl(n.meshAddress, p.peerPort)))
    // Longest-running first: a node that just appeared may be flapping.
    .sort((a, b) => a.startedAt - b.startedAt || (a.publicKey < b.publicKey ? -1 : 1))[0];
  if (!candidate) return { kind: "none" };
  return { kind: "add-learner", node: candidate, peerUrl: peerUrl(candidate.meshAddress, p.peerPort) };
}

export async function applyVoterAction(client: Etcd3, action: VoterAction, ms = 5000): Promise<string | undefined> {
  switch (action.kind) {
    case "none":
      return undefined;
    case "promote":
      await deadline("etcd member promote", ms, client.cluster.memberPromote({ ID: action.member.id } as never));
      return `promoted ${action.member.name} to voter`;
    case "add-learner":
      await deadline("etcd member add", ms, client.cluster.memberAdd({ peerURLs: [action.peerUrl], isLearner: true } as never));
      return `added ${action.node.name} as a learner (${action.peerUrl})`;
    case "remove-stale-learner":
      await deadline("etcd member remove", ms, client.cluster.memberRemove({ ID: action.member.id } as never));
      return `removed learner ${action.member.id} that never started`;
    case "remove-spare-learner":
      await deadline("etcd member remove", ms, client.cluster.memberRemove({ ID: action.member.id } as never));
      return `removed learner ${action.member.name || action.member.id} (not needed: every voter has its node record)`;
    case "remove-dead-learner":
      await deadline("etcd member remove", ms, client.cluster.memberRemove({ ID: action.member.id } as never));
      return `removed learner ${action.member.name || action.member.id} (no node record for ${Math.round(action.goneMs / 1000)} s)`;
    case "remove-dead-voter":
      await deadline("etcd member remove", ms, client.cluster.memberRemove({ ID: action.member.id } as never));
      return `removed voter ${action.member.name || action.member.id} (no node record for ${Math.round(action.goneMs / 1000)} s)`;
  }
}


export interface VoterLogEntry {
  readonly time: string;
  readonly change: string;
}

const VOTER_LOG_LENGTH = 20;

/** Keeps the last voter changes in the KV (one JSON key), for `members` to show. */
export async function appendVoterLog(client: Etcd3, entry: VoterLogEntry, ms = 2000): Promise<void> {
  const current = await readVoterLog(client, ms);
  const next = [...current, entry].slice(-VOTER_LOG_LENGTH);
  await deadline("etcd write of the voter log", ms, client.put(KEYS.voterLog).value(JSON.stringify(next)).exec());
}

export async function readVoterLog(client: Etcd3, ms = 2000): Promise<VoterLogEntry[]> {
  const raw = await deadline("etcd read of the voter log", ms, client.get(KEYS.voterLog).string());
  if (!raw) return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    return Array.isArray(parsed) ? (parsed.filter((e) => e && typeof e.time === "string" && typeof e.change === "string") as VoterLogEntry[]) : [];
  } catch {
    return [];
  }
}

export { memberList };
