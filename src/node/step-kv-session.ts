import { hostname } from "node:os";
import type { Etcd3 } from "etcd3";
import { PendingChanges, applyOps } from "../config/pending.ts";
import { leaderOf, memberList, openClient } from "../consensus/client.ts";
import { clientUrl, peerUrl, voterEndpoints } from "../consensus/etcd-args.ts";
import { seedKvIfEmpty, updateKvMapping } from "../consensus/kv-config.ts";
import { LINKS_PREFIX } from "../consensus/links.ts";
import { NodeRegistration } from "../consensus/registry.ts";
import { KEYS, type ClusterSettings } from "../consensus/settings.ts";
import { rangesOutside, watchRanges, type RangeWatch } from "../consensus/watch-ranges.ts";
import { KEY_ROOT } from "../config/flatten.ts";
import { readAdvertised } from "./advertised.ts";
import { builtInLabels } from "./labels.ts";
import { selfRecord } from "./self.ts";
import { errorMessage } from "../util/errors.ts";
import { ETCD_SERVICE, PROXY_SERVICE, displayName, etcdServesMeshOnly, hostOfUrl, type NodeState, type StepContext } from "./agent-state.ts";
import type { ConfigView } from "./config-view.ts";

export interface KvSessionDeps extends StepContext {
  readonly config: ConfigView;
  readonly version: string;
  readonly startedAt: number;
  /** A watched change under raptiformica/ (see routeChange; link reports only while `watchLinks(true)`), with the KV revision that made it. */
  readonly onChange: (type: "put" | "delete", key: string, value: string | undefined, revision: bigint) => void;
  /** Reconcile again now. */
  readonly poke: () => void;
}

/**
 * Where this node's KV client connects (client URLs): its own etcd or grpc-proxy on
 * 127.0.0.1, except
 * - while it is a learner — a learner cannot serve reads, writes or leases — or a member (or
 *   one just removed) whose local endpoint is still the grpc-proxy (`localIsProxy`: through it
 *   the member list has no peer URLs, and this member could not find itself in it): then the
 *   voters, less those whose node record is gone (`recordGone`: mesh addresses), unless that
 *   leaves none. A learner is most often the replacement of a voter whose record just went: its
 *   keep-alives must not wait on that dead voter, or its own record lapses too;
 * - while it is a voter whose etcd still listens on its mesh address only (`ownMeshEtcd`, its
 *   client URL there; promoted, waiting for the restart slot to take 127.0.0.1 over): that
 *   etcd alone. It serves as any voter does, and the other voters include, for the seconds
 *   until its record goes, the dead one this member may be replacing: a KV client that also
 *   went there stalled a promoted member's writes and restart claim for 10 s in the lab, and for
 *   a minute once, when the leader died next.
 */
export function kvEndpoints(s: Pick<NodeState, "role" | "voterEndpoints" | "recordGone">, clientPort: number, localIsProxy = false, ownMeshEtcd?: string): string[] {
  const local = [clientUrl("127.0.0.1", clientPort)];
  if (s.role === "proxy" || s.voterEndpoints.length === 0) return local;
  if (s.role !== "learner" && !localIsProxy) return local;
  if ((s.role === "voter" || s.role === "leader") && ownMeshEtcd !== undefined) return [ownMeshEtcd];
  const live = s.voterEndpoints.filter((e) => !s.recordGone.has(hostOfUrl(e)));
  return [...(live.length > 0 ? live : s.voterEndpoints)];
}

/**
 * What every agent watches: all of raptiformica/ but the link reports, the jobs (the job runner
 * watches those itself) and the gone marks (read by the eviction pass). Every member writes its
 * link report at least every 30 s and on every peering change: delivered to every agent, that
 * was N² events for N members, all dropped but on the voters.
 */
export const AGENT_WATCH = rangesOutside(`${KEY_ROOT}/`, [KEYS.links, KEYS.jobs, KEYS.gone]);
/** What a voter watches besides (its failure watch judges by the reports). */
export const LINKS_WATCH = rangesOutside(LINKS_PREFIX, []);

/**
 * The KV session: one etcd client (the local endpoint, or the voters while this node is a
 * learner, which cannot serve requests), the first seed of an empty KV from the local cache,
 * this member's role as etcd sees it, the config changes queued while offline, the
 * lease-backed node record and the watch on raptiformica/.
 */
export class KvSession {
  private kv?: Etcd3;
  private target = "";
  private registration?: NodeRegistration;
  private watcher?: RangeWatch;
  private linksWatcher?: RangeWatch;
  /** Set once, never reset: the KV has the config (a new client to a new target skips the seed). */
  private seededOnce = false;

  constructor(private readonly d: KvSessionDeps) {}

  get client(): Etcd3 | undefined {
    return this.kv;
  }

  get seeded(): boolean {
    return this.seededOnce;
  }

  /** The node record's registration, for keys that live on its lease (link reports); undefined before the first `register`. */
  get lease(): NodeRegistration | undefined {
    return this.registration;
  }

  close(): void {
    this.d.config.unfollow();
    this.d.config.invalidate();
    void this.watcher?.cancel();
    this.watcher = undefined;
    void this.linksWatcher?.cancel();
    this.linksWatcher = undefined;
    this.registration?.close();
    this.registration = undefined;
    this.kv?.close();
    this.kv = undefined;
  }

  /** Shutdown: like close, but waits for the watch to be cancelled. */
  async stop(): Promise<void> {
    await Promise.all([this.watcher?.cancel(), this.linksWatcher?.cancel()]);
    this.registration?.close();
    this.kv?.close();
  }

  /**
   * Closes the session for a restart of the etcd it talks to, the node record first moved onto
   * a lease of `holdSeconds` nothing keeps alive (NodeRegistration.hold), so it outlasts the
   * restart; the next `register` puts it on a fresh lease. Never throws.
   */
  async closeForRestart(holdSeconds: number): Promise<void> {
    await this.registration?.hold(holdSeconds);
    this.close();
  }

  /** Graceful leave: drop the node record now rather than after its TTL. */
  async leave(): Promise<void> {
    await this.registration?.revoke();
  }

  /**
   * The client, the seed and the role etcd reports for this member (leader, voter or learner)
   * with the voters' endpoints; undefined (and the session closed) when neither a local etcd
   * nor a grpc-proxy runs. A role that cannot be asked stays as it was.
   */
  async connect(s: NodeState, settings: ClusterSettings): Promise<Partial<NodeState> | undefined> {
    const sup = this.d.supervisor;
    if (!sup.isRunning(ETCD_SERVICE) && !sup.isRunning(PROXY_SERVICE)) {
      this.close();
      return undefined;
    }
    const ownMeshEtcd = s.identity && etcdServesMeshOnly(sup) ? clientUrl(s.identity.address, settings.clientPort) : undefined;
    const endpoints = kvEndpoints(s, settings.clientPort, sup.isRunning(PROXY_SERVICE), ownMeshEtcd);
    const target = endpoints.join(",");
    if (this.kv && this.target !== target) this.close();
    if (!this.kv) {
      this.kv = openClient(endpoints, this.d.node, 2000);
      this.target = target;
    }
    const kv = this.kv;
    if (!this.seededOnce) {
      const cache = this.d.local.snapshot().mapping;
      const seededNow = await seedKvIfEmpty(kv, cache, 5000);
      if (seededNow) this.d.log.info(`uploaded the local config (${Object.keys(cache).length} keys) to the empty cluster KV`);
      this.seededOnce = true;
      this.d.config.scheduleMirror();
    }
    if (s.role === "proxy" || !s.identity) return {};
    try {
      const myPeer = peerUrl(s.identity.address, settings.peerPort);
      const [{ leader }, members] = await Promise.all([leaderOf(kv, 2000), memberList(kv, 2000)]);
      const me = members.find((m) => m.peerURLs.includes(myPeer));
      const endpoints = voterEndpoints(members, settings.clientPort);
      // Not in the list (removed; the consensus step re-joins it): the role stays as it was.
      if (!me) return { voterEndpoints: endpoints };
      return { role: me.isLearner ? "learner" : leader === me.id ? "leader" : "voter", voterEndpoints: endpoints };
    } catch {
      return {}; // keep the last known role
    }
  }

  /** After `connect`: the queued config changes, then the node record (on its lease). */
  async register(s: NodeState, settings: ClusterSettings): Promise<Pick<NodeState, "registered">> {
    const kv = this.kv;
    const { identity, info } = s;
    // Both are set by the mesh step in the same tick, before the session connects.
    if (!kv || !identity || !info) throw new Error("the KV session is not connected");
    const advertised = readAdvertised(this.d.cache.lastAdvertised);
    const record = selfRecord({ identity, info, name: displayName() }, advertised.ok ? advertised.value : undefined, {
      role: s.role ?? "proxy",
      startedAt: this.d.startedAt,
      hostname: hostname(),
      version: this.d.version,
      labels: builtInLabels(),
    });
    await this.replayPending(kv);
    this.registration ??= new NodeRegistration(kv, settings.nodeTtlSeconds, Date.now, () => this.d.poke());
    await this.registration.ensure(record, 3000);
    return { registered: true };
  }

  /** After `register`: the watch on raptiformica/ but link reports, jobs and gone marks (AGENT_WATCH), started once per client. */
  async watch(): Promise<void> {
    if (!this.watcher && this.kv) await this.startWatch(this.kv);
  }

  /**
   * The watch on the link reports, kept while `on` (while this member is a voter: its failure
   * watch reads them) and cancelled otherwise. Returns true when it started now: changes before
   * it were not seen, so the reports are to be read once (FailureWatch.reseed). A watch that
   * cannot start is retried at the next call (logged, never thrown).
   */
  async watchLinks(on: boolean): Promise<boolean> {
    if (!on || !this.kv) {
      void this.linksWatcher?.cancel();
      this.linksWatcher = undefined;
      return false;
    }
    if (this.linksWatcher) return false;
    const kv = this.kv;
    try {
      // `failed` comes only after watchRanges has returned (an I/O event, after this await).
      const w: RangeWatch = await watchRanges(kv, LINKS_WATCH, {
        put: (key, value, revision) => this.d.onChange("put", key, value, revision),
        delete: (key, revision) => this.d.onChange("delete", key, undefined, revision),
        failed: (e) => {
          if (this.linksWatcher !== w) return;
          this.d.log.debug(`link reports watch: ${errorMessage(e)}; watching again`);
          this.linksWatcher = undefined;
          this.d.poke();
        },
      });
      // The client may have been closed while the watch started.
      if (this.kv !== kv) {
        void w.cancel();
        return false;
      }
      this.linksWatcher = w;
      return true;
    } catch (e) {
      this.d.log.debug(`link reports watch: ${errorMessage(e)}`);
      return false;
    }
  }

  /** Pushes config changes made here while the cluster was unreachable (see PendingChanges). */
  private async replayPending(kv: Etcd3): Promise<void> {
    const journal = new PendingChanges(this.d.cache.pendingConfig).take();
    if (!journal) return;
    try {
      if (journal.ops.length > 0) await updateKvMapping(kv, (m) => applyOps(m, journal.ops), 5000);
      journal.done();
      this.d.config.invalidate();
      this.d.log.info(`pushed ${journal.ops.length} config change(s) made while the cluster was unreachable`);
    } catch (e) {
      journal.restore();
      throw e;
    }
  }

  /**
   * The watch takes up right after the revision the config copy was read at, so the copy misses
   * no change while the watch lives and need not be read again every KV_COPY_MAX_AGE_MS (at
   * 1 000 members those re-reads were 33 reads a second of the whole ~1 MB config on the
   * voters). Without a copy (the KV did not answer the read) it watches from now, and the copy
   * keeps its re-read bound.
   */
  private async startWatch(kv: Etcd3): Promise<void> {
    if (this.d.config.copyRevision === undefined) await this.d.config.mapping();
    const from = this.d.config.copyRevision;
    // `failed` comes only after watchRanges has returned (an I/O event, after this await).
    const watcher: RangeWatch = await watchRanges(
      kv,
      AGENT_WATCH,
      {
        put: (key, value, revision) => this.d.onChange("put", key, value, revision),
        delete: (key, revision) => this.d.onChange("delete", key, undefined, revision),
        // Only when etcd cancels the watch — e.g. resuming after a reconnect from a revision
        // that auto-compaction removed. It is dead then: start a new one on the next tick, and
        // read the config again since events were missed.
        failed: (e) => {
          if (this.watcher !== watcher) return;
          this.d.log.debug(`watch: ${errorMessage(e)}; watching again`);
          this.watcher = undefined;
          this.d.config.unfollow();
          this.d.config.invalidate();
          this.d.poke();
        },
      },
      3000,
      from === undefined ? undefined : from + 1n,
    ).catch((e: unknown) => {
      // The copy's revision may have been compacted away (etcd refuses the watch): the next
      // try reads the config again and watches from there.
      this.d.config.invalidate();
      throw e;
    });
    if (this.kv !== kv) {
      void watcher.cancel();
      return;
    }
    this.watcher = watcher;
    if (from !== undefined) this.d.config.follow(from);
  }
}
