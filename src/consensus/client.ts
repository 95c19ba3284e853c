import { readFileSync } from "node:fs";
import { noop } from "cockatiel";
import { ClientRuntimeError, Etcd3, EtcdError, GRPCGenericError, GRPCUnavailableError, type IOptions } from "etcd3";
import { ClusterUnavailable } from "../util/errors.ts";

/** Where a member keeps its etcd certificate, key and the cluster CA (the node's paths carry these). */
export interface TlsFiles {
  readonly caCert: string;
  readonly nodeCert: string;
  readonly nodeKey: string;
}

/** The longest any single unary etcd call may run; callers wait less (`deadline`). */
export const CALL_DEADLINE_MS = 10_000;

/** A client that authenticates with this node's certificate; callers bound every call with `deadline`. */
export function openClient(endpoints: readonly string[], tls: TlsFiles, dialTimeoutMs = 2000): Etcd3 {
  const options: IOptions = {
    hosts: [...endpoints],
    credentials: {
      rootCertificate: readFileSync(tls.caCert),
      certChain: readFileSync(tls.nodeCert),
      privateKey: readFileSync(tls.nodeKey),
    },
    dialTimeout: dialTimeoutMs,
    // `deadline` only stops waiting; this cancels the call itself. Without it, calls to an etcd
    // that stalls (no quorum, a starved machine) pile up in grpc-js until they all answer at
    // once: agents in a 50-node lab ran out of heap that way. Streams (watch, lease keep-alive)
    // live on.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
    // Every node certificate carries the DNS name "localhost"; verifying against it (instead of
    // the IP, which TLS SNI does not allow) keeps the check "signed by the cluster CA".
    grpcOptions: { "grpc.ssl_target_name_override": "localhost", "grpc.default_authority": "localhost" },
    // No circuit breaker and no retries: the agent's loop is the retry, and a breaker would keep
    // the local endpoint closed for seconds after etcd comes back.
    faultHandling: { host: () => noop, global: noop },
  };
  return new Etcd3(options);
}

/**
 * Whether an etcd call was cut off rather than refused: the connection under it dropped
 * (GRPCUnavailableError), or the etcd server it reached was stopping — a voter leaving
 * (`clean`) or restarting. etcd answers that "etcdserver: server stopped" as UNAVAILABLE, but a
 * grpc-proxy in between passes it on as UNKNOWN (code 2): a proxy member's `config set` failed
 * so in the soak (bench/soak.ts) while a voter left. Either way the call may have been applied.
 */
export function isDropped(e: unknown): boolean {
  return e instanceof GRPCUnavailableError || (e instanceof GRPCGenericError && e.message.includes("etcdserver: server stopped"));
}

/**
 * Runs a read once more (after `pauseMs`, 300 ms) when a dropped connection cut it
 * (isDropped): on a proxy node the local grpc-proxy restarts when its upstreams
 * change (a voter died or was replaced), and a one-off command such as `members` should not
 * report lost quorum for that. Reads only: a write cut this way may have been applied.
 * Other errors, and a second failure, are thrown as they are.
 */
export async function readOnceMoreIfDropped<T>(read: () => Promise<T>, pauseMs = 300): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (!isDropped(e)) throw e;
    await new Promise((r) => setTimeout(r, pauseMs));
    return read();
  }
}

/** An etcd call (`what`) that did not answer within `ms` milliseconds; see `deadline`. */
export class DeadlineExceeded extends ClusterUnavailable {
  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = "DeadlineExceeded";
  }
}

/**
 * Whether an error that reached the top of a command is the cluster not answering (an etcd
 * call that timed out, found no server, or was cut off) rather than a bug here. Lives beside
 * the etcd client, which imports etcd3 statically: in the bundle a dynamic `import("etcd3")`
 * exposes only `default`, and its error classes would be undefined there.
 */
export function isClusterUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof ClusterUnavailable) return true;
  return e instanceof GRPCGenericError || e instanceof EtcdError || e instanceof ClientRuntimeError;
}

/** `p`, or a rejection with DeadlineExceeded (`what` names the call) after `ms` milliseconds. */
export function deadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => timer && clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded(what, ms)), ms);
    }),
  ]);
}

export interface EtcdMember {
  readonly id: string;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

export async function memberList(client: Etcd3, ms = 3000): Promise<EtcdMember[]> {
  const res = await deadline("etcd member list", ms, client.cluster.memberList({ linearizable: false } as never));
  return (res.members ?? []).map((m) => ({
    id: String(m.ID),
    name: m.name ?? "",
    peerURLs: m.peerURLs ?? [],
    clientURLs: m.clientURLs ?? [],
    isLearner: Boolean((m as { isLearner?: boolean }).isLearner),
  }));
}

/** The leader's member id as seen by the endpoint answering, and that endpoint's own id. */
export async function leaderOf(client: Etcd3, ms = 3000): Promise<{ leader: string; self: string }> {
  const st = await deadline("etcd status", ms, client.maintenance.status());
  return { leader: String(st.leader), self: String(st.header.member_id) };
}

export interface EtcdAlarm {
  /** The member that raised it (etcd's id, decimal). */
  readonly memberId: string;
  /** `NOSPACE` (the database reached its space quota: writes refused) or `CORRUPT`. */
  readonly alarm: string;
}

/**
 * The alarms raised in the cluster (Maintenance.Alarm GET: all members), and the revision the
 * answer was read at. Through a grpc-proxy too.
 */
export async function alarmList(client: Etcd3, ms = 3000): Promise<{ alarms: EtcdAlarm[]; revision: string }> {
  const res = await deadline("etcd alarm list", ms, client.maintenance.alarm({ action: "Get", memberID: 0, alarm: "None" } as never));
  const alarms = (res.alarms ?? []).map((a) => ({ memberId: String(a.memberID), alarm: String(a.alarm).toUpperCase() }));
  // etcd 3.4 answers an alarm GET without a response header.
  const revision = res.header?.revision ?? (alarms.length > 0 ? (await deadline("etcd status", ms, client.maintenance.status())).header.revision : "0");
  return { alarms, revision: String(revision) };
}

/** The member list from the first of `endpoints` that answers (each tried on its own, in parallel). */
export async function probeMemberList(endpoints: readonly string[], tls: TlsFiles, ms = 2000): Promise<EtcdMember[] | undefined> {
  if (endpoints.length === 0) return undefined;
  const attempts = endpoints.map(async (url) => {
    const client = openClient([url], tls, Math.min(ms, 1500));
    try {
      return await memberList(client, ms);
    } finally {
      client.close();
    }
  });
  try {
    return await Promise.any(attempts);
  } catch {
    return undefined;
  }
}

/**
 * Whether the etcd member `memberId` (etcd's id, decimal) answers a status request at `url`
 * (its client URL over the mesh) within `ms`, as itself: a process at that address that is
 * another member does not count. Never throws: false for no answer, a refusal or an error.
 */
export async function memberAnswers(url: string, memberId: string, tls: TlsFiles, ms = 1000): Promise<boolean> {
  const client = openClient([url], tls, ms);
  try {
    return (await leaderOf(client, ms)).self === memberId;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/**
 * etcd's grpc-proxy answers MemberList with a made-up list holding only itself (no peer URLs),
 * so through a proxy the real list has to be asked from the members over the mesh.
 */
export async function realMemberList(client: Etcd3, memberEndpoints: readonly string[], tls: TlsFiles, ms = 2500): Promise<EtcdMember[]> {
  const list = await memberList(client, ms);
  if (list.length > 0 && list.some((m) => m.peerURLs.length > 0)) return list;
  const real = await probeMemberList(memberEndpoints, tls, ms);
  if (!real) throw new DeadlineExceeded("etcd member list from the cluster members", ms);
  return real;
}
