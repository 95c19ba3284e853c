import type { Etcd3 } from "etcd3";
import { deadline, memberList, type EtcdMember } from "./client.ts";
import { peerUrl } from "./etcd-args.ts";
import type { NodeRecord } from "./registry.ts";
import { targetVoters } from "./settings.ts";

/** One step of the voter manager: at most one membership change per call. */
export type VoterAction =
  | { readonly kind: "none" }
  | { readonly kind: "promote"; readonly member: EtcdMember }
  | { readonly kind: "add-learner"; readonly node: NodeRecord; readonly peerUrl: string }
  | { readonly kind: "remove-stale-learner"; readonly member: EtcdMember };

export interface VoterInput {
  readonly members: readonly EtcdMember[];
  readonly alive: readonly NodeRecord[];
  readonly maxVoters: number;
  readonly peerPort: number;
  /** How long each unstarted learner has been waiting, by member id (ms). */
  readonly learnerAgeMs: ReadonlyMap<string, number>;
  readonly learnerStartTimeoutMs: number;
}

/**
 * Grows the voter set towards the target (largest odd number ≤ alive members, ≤ max_voters):
 * add one learner, wait for it to start, promote it once etcd says it caught up, then the next.
 * Never more than one learner at a time (etcd 3.4 allows only one) and never a removal of a
 * voter here: shrinking and replacing dead voters is the self-healing manager's job.
 */
export function nextVoterAction(p: VoterInput): VoterAction {
  const learner = p.members.find((m) => m.isLearner);
  if (learner) {
    if (learner.name) return { kind: "promote", member: learner };
    if ((p.learnerAgeMs.get(learner.id) ?? 0) > p.learnerStartTimeoutMs) return { kind: "remove-stale-learner", member: learner };
    return { kind: "none" };
  }
  const voters = p.members.filter((m) => !m.isLearner);
  const target = targetVoters(p.alive.length, p.maxVoters);
  if (voters.length >= target) return { kind: "none" };
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
  }
}

export { memberList };
