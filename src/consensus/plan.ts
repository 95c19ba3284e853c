import type { EtcdMember } from "./client.ts";
import { voterEndpoints } from "./etcd-args.ts";

/** What this node should run for consensus right now. */
export type ConsensusPlan =
  | { readonly kind: "member" }
  | { readonly kind: "bootstrap" }
  | { readonly kind: "join-as-member"; readonly initialCluster: ReadonlyMap<string, string> }
  | { readonly kind: "proxy"; readonly endpoints: readonly string[] }
  | { readonly kind: "rejoin"; readonly reason: string }
  | { readonly kind: "wait"; readonly reason: string };

export interface PlanInput {
  readonly myName: string;
  readonly myPeerUrl: string;
  readonly myPublicKey: string;
  /** Client port of the cluster: proxy endpoints are derived from the voters' peer URLs. */
  readonly clientPort: number;
  /** An etcd data dir exists here: this node has been a member. */
  readonly hasData: boolean;
  /** Whether a cluster has ever been bootstrapped (its token is in the shared config). */
  readonly clusterKnown: boolean;
  /** Public keys of the other neighbours that have not left. */
  readonly otherNeighbours: readonly string[];
  /** The member list, if any cluster endpoint answered. */
  readonly members?: readonly EtcdMember[];
}

/**
 * The consensus decision, kept pure so it can be tested exhaustively:
 * - a node with data runs its member (unless the cluster removed it: then it re-joins fresh);
 * - a node the leader added to the member list starts as that (learner) member;
 * - anyone else reaching the cluster runs a grpc-proxy to the voters;
 * - only when no cluster was ever made does one node — the lowest public key among the
 *   known machines — bootstrap it; the rest wait, so two clusters are never born.
 */
export function planConsensus(p: PlanInput): ConsensusPlan {
  const me = p.members?.find((m) => m.peerURLs.includes(p.myPeerUrl));
  if (p.hasData) {
    if (p.members && !me) return { kind: "rejoin", reason: "this member was removed from the cluster" };
    return { kind: "member" };
  }
  if (p.members) {
    if (me) {
      const initialCluster = new Map<string, string>();
      for (const m of p.members) {
        if (m === me) continue;
        const url = m.peerURLs[0];
        if (m.name && url) initialCluster.set(m.name, url);
      }
      initialCluster.set(p.myName, p.myPeerUrl);
      return { kind: "join-as-member", initialCluster };
    }
    const endpoints = voterEndpoints(p.members, p.clientPort);
    if (endpoints.length === 0) return { kind: "wait", reason: "the cluster has no started voter to proxy to" };
    return { kind: "proxy", endpoints };
  }
  if (p.clusterKnown) return { kind: "wait", reason: "no cluster member is reachable over the mesh yet" };
  const lowest = [...p.otherNeighbours, p.myPublicKey].sort()[0];
  if (lowest === p.myPublicKey) return { kind: "bootstrap" };
  return { kind: "wait", reason: `waiting for ${lowest?.slice(0, 16)} to bootstrap the cluster` };
}
