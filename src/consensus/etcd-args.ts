import type { FlatMapping } from "../config/flatten.ts";
import { parseNeighbours } from "../mesh/neighbours.ts";
import type { EtcdMember, TlsFiles } from "./client.ts";

/** What the etcd server and grpc-proxy are started with: its dirs and the TLS files. */
export interface EtcdPaths extends TlsFiles {
  /** Parent of the data dir; the grpc-proxy keeps its own data in `<etcdDir>/proxy`. */
  readonly etcdDir: string;
  readonly etcdData: string;
}

/** `[addr]` for IPv6 in URLs. */
export function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

export function clientUrl(address: string, port: number): string {
  return `https://${hostPort(address, port)}`;
}

export function peerUrl(address: string, port: number): string {
  return `https://${hostPort(address, port)}`;
}

/** The client URL on the same host as a member's peer URL. */
export function clientUrlOfPeer(peer: string, clientPort: number): string {
  const u = new URL(peer);
  u.port = String(clientPort);
  return `${u.protocol}//${u.host}`;
}

/**
 * Client URLs of the started voters. Derived from peer URLs, not clientURLs: seen through a
 * grpc-proxy, clientURLs are the proxy's own address.
 */
export function voterEndpoints(members: readonly EtcdMember[], clientPort: number): string[] {
  return members
    .filter((m) => !m.isLearner && m.name && m.peerURLs[0])
    .map((m) => clientUrlOfPeer(m.peerURLs[0] as string, clientPort));
}

/** Client URLs of the active neighbours (but `self`): where an etcd member may answer over the mesh. */
export function neighbourEndpoints(mapping: FlatMapping, clientPort: number, self?: string): string[] {
  return parseNeighbours(mapping)
    .filter((n) => n.publicKey !== self && !n.left)
    .map((n) => clientUrl(n.meshAddress, clientPort));
}

/** How many revisions of history etcd keeps (see the flags in etcdServerArgs). */
export const AUTO_COMPACTION_REVISIONS = 10_000;

export interface MemberStart {
  readonly name: string;
  readonly meshAddress: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `new`: bootstrap a one-member cluster; `existing`: join members already in the member list. */
  readonly state: "new" | "existing";
  /** name → peer URL of every member, this one included (ignored when the data dir exists). */
  readonly initialCluster: ReadonlyMap<string, string>;
  readonly token: string;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /**
   * Whether etcd also serves clients on 127.0.0.1 (the member's local endpoint). False while
   * this member is a learner: the local endpoint is then its grpc-proxy to the voters, because
   * a learner refuses reads, writes and leases (see ConsensusStep).
   */
  readonly localClients?: boolean;
}

/**
 * etcd server argv: listens only on the mesh address and localhost (the mesh address alone when
 * `m.localClients` is false), mutual TLS for clients and peers from the cluster CA.
 */
export function etcdServerArgs(paths: EtcdPaths, m: MemberStart): string[] {
  const cluster = [...m.initialCluster.entries()].map(([n, u]) => `${n}=${u}`).join(",");
  return [
    "--name", m.name,
    "--data-dir", paths.etcdData,
    "--listen-peer-urls", peerUrl(m.meshAddress, m.peerPort),
    "--initial-advertise-peer-urls", peerUrl(m.meshAddress, m.peerPort),
    "--listen-client-urls", m.localClients === false ? clientUrl(m.meshAddress, m.clientPort) : `${clientUrl(m.meshAddress, m.clientPort)},${clientUrl("127.0.0.1", m.clientPort)}`,
    "--advertise-client-urls", clientUrl(m.meshAddress, m.clientPort),
    "--initial-cluster", cluster,
    "--initial-cluster-state", m.state,
    "--initial-cluster-token", m.token,
    "--client-cert-auth",
    "--trusted-ca-file", paths.caCert,
    "--cert-file", paths.nodeCert,
    "--key-file", paths.nodeKey,
    "--peer-client-cert-auth",
    "--peer-trusted-ca-file", paths.caCert,
    "--peer-cert-file", paths.nodeCert,
    "--peer-key-file", paths.nodeKey,
    // The initial upload of a node's cached config is one transaction.
    "--max-txn-ops", "10000",
    "--snapshot-count", "10000",
    // Without compaction etcd keeps every old value forever, grows to its space quota (2 GB by
    // default) and raises NOSPACE: the KV is then read-only, node records cannot be written and
    // the cluster looks dead. Revision mode, not periodic: it bounds the history by count, so a
    // burst of writes (50 nodes joining, a hook looping on `config set`) cannot outgrow it
    // within a time window. Every 5 minutes etcd drops all but the last 10000 revisions: a few
    // MB with this KV's small values, and room for a watcher that was cut off to resume where
    // it was (a 50-node cluster forming writes a few thousand). Both flags exist since etcd 3.3,
    // so 3.4 and 3.5 take them; they apply when etcd (re)starts, existing data included.
    "--auto-compaction-mode", "revision",
    "--auto-compaction-retention", String(AUTO_COMPACTION_REVISIONS),
    // Pre-vote (raft thesis §9.6): a member that was cut off for a moment (its yggdrasil
    // restarting, a link flap) asks before it campaigns, so it does not raise the term and
    // unseat a healthy leader when it comes back. 3.5 defaults to it; 3.4 does not.
    "--pre-vote=true",
    "--heartbeat-interval", String(m.heartbeatMs),
    "--election-timeout", String(m.electionMs),
    "--logger", "zap",
    "--log-outputs", "stderr",
  ];
}

/**
 * Local `etcd grpc-proxy` for non-voters: apps on this member reach the KV at 127.0.0.1.
 * Upstream it authenticates with this node's certificate. `extra`: flags for the installed
 * release (etcd-version.ts proxyKeepaliveArgs).
 */
export function grpcProxyArgs(paths: EtcdPaths, endpoints: readonly string[], clientPort: number, extra: readonly string[] = []): string[] {
  return [
    "grpc-proxy", "start",
    "--endpoints", endpoints.join(","),
    "--listen-addr", hostPort("127.0.0.1", clientPort),
    // No --advertise-client-url: with it the proxy answers MemberList with a made-up list
    // holding only itself, and this node could no longer see the real members.
    "--cacert", paths.caCert,
    "--cert", paths.nodeCert,
    "--key", paths.nodeKey,
    "--cert-file", paths.nodeCert,
    "--key-file", paths.nodeKey,
    "--trusted-ca-file", paths.caCert,
    "--data-dir", `${paths.etcdDir}/proxy`,
    ...extra,
  ];
}
