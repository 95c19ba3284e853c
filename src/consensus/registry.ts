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
}

export function nodeKey(publicKey: string): string {
  return `${KEYS.nodes}${publicKey}`;
}

export async function readNodeRecords(client: Etcd3, ms = 3000): Promise<NodeRecord[]> {
  const all = await deadline("etcd read of node records", ms, client.getAll().prefix(KEYS.nodes).strings());
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

  constructor(
    private readonly client: LeaseClient,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
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
      });
      lease.on("keepaliveSucceeded", (res: { TTL: string }) => {
        // Through a grpc-proxy, a lease that expired upstream is answered with TTL -1, which
        // etcd3 takes for success (it only knows 0): the record is gone while keep-alives
        // "succeed". Seen on 3 of 50 lab nodes after the cluster went through elections.
        if (Number(res.TTL) <= 0) this.lost = true;
        else this.lastKeepAlive = this.now();
      });
      this.lease = lease;
      this.written = "";
    }
    if (this.written === value) return;
    await deadline("etcd write of this node's record", ms, this.lease.put(nodeKey(record.publicKey)).value(value).exec());
    this.written = value;
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
