import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import { UserError } from "../util/errors.ts";

export const KEYS = {
  yggdrasilPort: `${KEY_ROOT}/meshnet/yggdrasil/port`,
  clientPort: `${KEY_ROOT}/meshnet/etcd/client_port`,
  peerPort: `${KEY_ROOT}/meshnet/etcd/peer_port`,
  maxVoters: `${KEY_ROOT}/meshnet/etcd/max_voters`,
  nodeTtl: `${KEY_ROOT}/meshnet/etcd/node_ttl`,
  deadVoterGrace: `${KEY_ROOT}/meshnet/etcd/dead_voter_grace`,
  heartbeatMs: `${KEY_ROOT}/meshnet/etcd/heartbeat_ms`,
  electionMs: `${KEY_ROOT}/meshnet/etcd/election_ms`,
  evictAfter: `${KEY_ROOT}/meshnet/evict_after`,
  caCert: `${KEY_ROOT}/meshnet/etcd/ca_cert`,
  caKey: `${KEY_ROOT}/meshnet/etcd/ca_key`,
  clusterToken: `${KEY_ROOT}/meshnet/etcd/cluster_token`,
  neighbours: `${KEY_ROOT}/meshnet/neighbours/`,
  /** Live, lease-backed node records: never mirrored into the local cache. */
  nodes: `${KEY_ROOT}/nodes/`,
  /** The voter manager's log of membership changes (last ones), shown by `members`. */
  voterLog: `${KEY_ROOT}/voters/log`,
  /** When each gone neighbour was first seen gone (ms since epoch), for eviction. */
  gone: `${KEY_ROOT}/gone/`,
} as const;

export interface ClusterSettings {
  readonly yggdrasilPort: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly maxVoters: number;
  readonly nodeTtlSeconds: number;
  /** How long a voter's node record must be gone before the leader replaces it. */
  readonly deadVoterGraceSeconds: number;
  /** How long a neighbour must be gone (failed or left) before it is evicted. */
  readonly evictAfterSeconds: number;
  /** etcd's raft timing: raise both for members far apart (heartbeat ≈ the worst round trip). */
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

function intSetting(mapping: FlatMapping, key: string, fallback: number, min: number, max: number): number {
  const raw = mapping[key];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UserError(`Config key ${key} is "${raw}", but it must be a whole number from ${min} to ${max}. Fix it with \`raptiformica config set ${key} <value>\`.`);
  }
  return n;
}

export function clusterSettings(mapping: FlatMapping): ClusterSettings {
  return {
    yggdrasilPort: intSetting(mapping, KEYS.yggdrasilPort, 4863, 1, 65535),
    clientPort: intSetting(mapping, KEYS.clientPort, 2379, 1, 65535),
    peerPort: intSetting(mapping, KEYS.peerPort, 2380, 1, 65535),
    maxVoters: intSetting(mapping, KEYS.maxVoters, 5, 1, 99),
    nodeTtlSeconds: intSetting(mapping, KEYS.nodeTtl, 5, 2, 600),
    deadVoterGraceSeconds: intSetting(mapping, KEYS.deadVoterGrace, 10, 0, 86_400),
    evictAfterSeconds: intSetting(mapping, KEYS.evictAfter, 3600, 0, 365 * 86_400),
    ...raftTiming(mapping),
  };
}

function raftTiming(mapping: FlatMapping): { heartbeatMs: number; electionMs: number } {
  const heartbeatMs = intSetting(mapping, KEYS.heartbeatMs, 100, 10, 5000);
  const electionMs = intSetting(mapping, KEYS.electionMs, 1000, 50, 50_000);
  // etcd refuses to start otherwise: every member would fail at once.
  if (electionMs < 5 * heartbeatMs) {
    throw new UserError(
      `Config key ${KEYS.electionMs} is ${electionMs} but ${KEYS.heartbeatMs} is ${heartbeatMs}: etcd needs the election timeout to be at least 5 heartbeats (10 is usual). ` +
        `Raise ${KEYS.electionMs} (\`raptiformica config set ${KEYS.electionMs} ${10 * heartbeatMs}\`) or lower the heartbeat.`,
    );
  }
  return { heartbeatMs, electionMs };
}

/**
 * How many voters a cluster of `members` nodes should have: the largest odd number not above
 * the member count, capped at `maxVoters` (itself rounded down to odd). Even voter counts add
 * no fault tolerance and make a split vote possible.
 */
export function targetVoters(members: number, maxVoters: number): number {
  if (members <= 0) return 0;
  const cap = maxVoters % 2 === 0 ? maxVoters - 1 : maxVoters;
  const odd = members % 2 === 0 ? members - 1 : members;
  return Math.max(1, Math.min(cap, odd));
}
