import type { Etcd3 } from "etcd3";
import { deadline } from "./client.ts";
import { KEYS } from "./settings.ts";

export type Role = "leader" | "voter" | "learner" | "proxy";

/** The live record of a member: exists only while its agent keeps the lease alive. */
export interface NodeRecord {
  readonly publicKey: string;
  readonly name: string;
  readonly meshAddress: string;
  readonly host?: string;
  readonly role: Role;
  /** When this agent started (ms since epoch): the basis of `uptime`. */
  readonly startedAt: number;
  readonly hostname: string;
  readonly version: string;
  readonly yggdrasilMajor: string;
  /** Built-in job labels (`arch`, `distribution`: node/labels.ts); absent from older members. */
  readonly labels?: Readonly<Record<string, string>>;
}

export function nodeKey(publicKey: string): string {
  return `${KEYS.nodes}${publicKey}`;
}

/**
 * The live node records (values that are not JSON are skipped), as of `revision` when given
 * (to read them together with other keys at one point in time).
 * @throws Error (etcd's, or a deadline's) when the KV does not answer within `ms`.
 */
export async function readNodeRecords(client: Etcd3, ms = 3000, revision?: string): Promise<NodeRecord[]> {
  const range = client.getAll().prefix(KEYS.nodes);
  const all = await deadline("etcd read of node records", ms, (revision === undefined ? range : range.revision(revision)).strings());
  const out: NodeRecord[] = [];
  for (const value of Object.values(all)) {
    try {
      out.push(JSON.parse(value) as NodeRecord);
    } catch {
      /* a foreign value under nodes/ is not a member */
    }
  }
  return out;
}

/**
 * Ends the lease `publicKey`'s node record is on, at once: the record and every key on that
 * lease (its link report) go now instead of at the lease's TTL, cluster-wide, as when the lease
 * expires. The member's agent, if it is alive after all, grants a new lease and writes its record
 * again (NodeRegistration). `onlyLease`: revoke only if the record is still on this lease
 * (decimal string), so a record written again meanwhile is left alone. Returns the lease
 * revoked, or undefined when there was no record (or it had moved to another lease).
 * @throws Error (etcd's, or a deadline's) when the KV does not answer within `ms`; a lease
 * that ended meanwhile is not an error.
 */
export async function revokeNodeRecord(client: Etcd3, publicKey: string, ms = 2000, onlyLease?: string): Promise<string | undefined> {
  const res = await deadline("etcd read of a node record", ms, client.get(nodeKey(publicKey)).exec());
  const lease = res.kvs[0]?.lease;
  if (lease === undefined || lease === "0" || (onlyLease !== undefined && lease !== onlyLease)) return undefined;
  try {
    await deadline("etcd lease revoke", ms, client.leaseClient.leaseRevoke({ ID: lease }));
  } catch (e) {
    if (/lease not found/i.test((e as Error).message)) return undefined;
    throw e;
  }
  return lease;
}

/** What the node record uses of an etcd3 lease (etcd3's Lease has this shape). */
export interface RecordLease {
  on(event: "lost", handler: (err: unknown) => void): unknown;
  on(event: "keepaliveSucceeded", handler: (res: { TTL: string }) => void): unknown;
  put(key: string): { value(v: string): { exec(): Promise<unknown> } };
  release(): void;
  revoke(): Promise<unknown>;
}

/** What the node record uses of the KV client: leases (an etcd3 client is one). */
export interface LeaseClient {
  lease(ttlSeconds: number, options: { autoKeepAlive: boolean }): RecordLease;
}

/** Leases granted by every NodeRegistration of this process: their generations never repeat. */
let leasesGranted = 0;

/**
 * Keeps `raptiformica/nodes/<key>` alive on a short lease. When the lease is lost (etcd
 * unreachable longer than the TTL) the record disappears cluster-wide — that is what marks the
 * node failed — and the next `ensure` grants a new lease.
 */
export class NodeRegistration {
  private lease: RecordLease | undefined;
  private lost = false;
  private written = "";
  private lastKeepAlive = 0;
  private leaseId = 0;
  /** The record's key, once written. */
  private key: string | undefined;

  constructor(
    private readonly client: LeaseClient,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
    /**
     * Called when the lease is found lost (expired, or revoked by a voter's failure watch,
     * node/failure-watch.ts): the agent then writes its record again at once instead of at its
     * next tick, up to 5 s later, so a voter ended while only briefly cut off is back within its
     * dead_voter_grace.
     */
    private readonly onLost: () => void = () => undefined,
  ) {}

  async ensure(record: NodeRecord, ms = 3000): Promise<void> {
    // etcd3 does not always say "lost" (see the keep-alive handler below; and when opening a
    // new keep-alive stream never settles, the lease dies on the server in silence): a lease
    // whose last good keep-alive is older than twice its TTL counts as lost too.
    const stale = this.lease !== undefined && this.now() - this.lastKeepAlive > 2 * this.ttlSeconds * 1000;
    if (this.lease && (this.lost || stale)) {
      this.lease.release();
      this.lease = undefined;
    }
    const value = JSON.stringify(record);
    if (!this.lease) {
      const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
      this.lost = false;
      this.lastKeepAlive = this.now();
      lease.on("lost", () => {
        this.lost = true;
        this.onLost();
      });
      lease.on("keepaliveSucceeded", (res: { TTL: string }) => {
        // Through a grpc-proxy, a lease that expired upstream is answered with TTL -1, which
        // etcd3 takes for success (it only knows 0): the record is gone while keep-alives
        // "succeed". Seen on 3 of 50 lab nodes after the cluster went through elections.
        if (Number(res.TTL) <= 0) {
          if (!this.lost) this.onLost();
          this.lost = true;
        } else this.lastKeepAlive = this.now();
      });
      this.lease = lease;
      this.leaseId = ++leasesGranted;
      this.written = "";
    }
    if (this.written === value) return;
    this.key = nodeKey(record.publicKey);
    await deadline("etcd write of this node's record", ms, this.lease.put(this.key).value(value).exec());
    this.written = value;
  }

  /**
   * Which lease the record is on: a number that changes whenever a new lease is granted (the
   * keys on the old one are gone or going), unique in this process across registrations;
   * undefined while there is none, it is lost, or the record is not written on it yet. Keys
   * that must vanish with the record (link reports) are written again when it changes.
   */
  get leaseGeneration(): number | undefined {
    return this.lease && this.written !== "" && !this.lost ? this.leaseId : undefined;
  }

  /**
   * Writes `key` on the record's lease, so that it vanishes with the record (lease expired or
   * revoked). Returns the lease generation it was written under (see leaseGeneration), or
   * undefined, writing nothing, when there is no live lease with the record on it.
   * @throws Error (the etcd write's, or a deadline's) when the write fails.
   */
  async putOnLease(key: string, value: string, ms = 3000): Promise<number | undefined> {
    const generation = this.leaseGeneration;
    const lease = this.lease;
    if (generation === undefined || !lease) return undefined;
    await deadline(`etcd write of ${key}`, ms, lease.put(key).value(value).exec());
    return generation;
  }

  /**
   * Moves the record, as last written, onto a lease of its own of `ttlSeconds` that nothing
   * keeps alive, and lets go of this registration's lease: for a member about to restart its
   * etcd under its own KV client (taking the local endpoint over, an upgrade). Its keep-alives
   * stop with the client, and a restart under load (4 s in a CI run) outlasted node_ttl: the
   * record lapsed and the leader removed a live voter. The next `ensure`, on the new client,
   * puts it on a fresh lease; if the member dies meanwhile, the record goes at `ttlSeconds`
   * (or when a voter's failure watch revokes that lease). Resolves to whether the record was
   * moved; never throws (the KV not answering within `ms` leaves it on the old lease).
   */
  async hold(ttlSeconds: number, ms = 2000): Promise<boolean> {
    if (!this.key || this.written === "" || this.lost) return false;
    const bridge = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    try {
      await deadline("etcd write of this node's record on a bridging lease", ms, bridge.put(this.key).value(this.written).exec());
      this.lease?.release();
      this.lease = undefined;
      return true;
    } catch {
      return false;
    } finally {
      bridge.release();
    }
  }

  /** Deletes the record at once (clean shutdown), instead of waiting for the TTL. */
  async revoke(ms = 2000): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await deadline("etcd lease revoke", ms, lease.revoke()).catch(() => undefined);
  }

  close(): void {
    this.lease?.release();
    this.lease = undefined;
  }
}
