import type { Etcd3 } from "etcd3";
import type { FlatMapping } from "../config/flatten.ts";
import { memberAnswers, realMemberList, type EtcdMember, type TlsFiles } from "../consensus/client.ts";
import { clientUrlOfPeer } from "../consensus/etcd-args.ts";
import { evictionPass } from "../consensus/gone.ts";
import { readNodeRecords, type NodeRecord } from "../consensus/registry.ts";
import type { ClusterSettings } from "../consensus/settings.ts";
import { appendVoterLog, applyVoterAction, membersWithoutRecord, nextVoterAction, type VoterAction, type VoterLogEntry } from "../consensus/voters.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";

/** What the leader's duties use of the cluster KV (etcdLeaderKv adapts an etcd3 client). */
export interface LeaderKv {
  /** The real member list (asked of the members when a proxy answers). */
  members(): Promise<EtcdMember[]>;
  /** The live node records. */
  nodeRecords(): Promise<NodeRecord[]>;
  /**
   * Whether `member`'s etcd answers over the mesh as itself (memberAnswers, about 1 s at most):
   * asked before a member is removed for having no node record.
   */
  answers(member: EtcdMember, clientPort: number): Promise<boolean>;
  /** Makes one membership change; says what it did (undefined for none). */
  applyVoterAction(action: VoterAction): Promise<string | undefined>;
  appendVoterLog(entry: VoterLogEntry): Promise<void>;
  /** One eviction pass (see consensus/gone.ts). */
  evictionPass(opts: { self: string; evictAfterMs: number; log: (line: string) => void; mapping?: FlatMapping }): Promise<unknown>;
}

export function etcdLeaderKv(client: Etcd3, tls: TlsFiles): LeaderKv {
  return {
    members: () => realMemberList(client, [], tls, 2000),
    nodeRecords: () => readNodeRecords(client, 2000),
    answers: (member, clientPort) => (member.peerURLs[0] ? memberAnswers(clientUrlOfPeer(member.peerURLs[0], clientPort), member.id, tls, 1000) : Promise.resolve(false)),
    applyVoterAction: (action) => applyVoterAction(client, action),
    appendVoterLog: (entry) => appendVoterLog(client, entry),
    evictionPass: (opts) => evictionPass(client, opts),
  };
}

/** A learner that has not started (no name) after this long is removed again. */
export const LEARNER_START_TIMEOUT_MS = 60_000;
/** The leader runs an eviction pass at most this often. */
export const EVICTION_INTERVAL_MS = 3000;

/**
 * The leader's duties: the voter set (one membership change per tick, see nextVoterAction)
 * and eviction of members gone past evict_after. The clocks both need — since when each
 * unstarted learner has waited, since when each voter and each learner has had no node record — are kept here,
 * as seen by this node while it leads.
 */
/** Keeps `since` to the ids in `ids`: a new one starts its clock at `at`, one no longer there is dropped. */
function keepSince(since: Map<string, number>, ids: ReadonlySet<string>, at: number): void {
  for (const id of [...since.keys()]) if (!ids.has(id)) since.delete(id);
  for (const id of ids) if (!since.has(id)) since.set(id, at);
}

/** How long each clock in `since` has run at `now` (ms), by id. */
function agesAt(since: ReadonlyMap<string, number>, now: number): Map<string, number> {
  return new Map([...since].map(([id, t]) => [id, now - t]));
}

export class LeaderDuties {
  private readonly learnerSince = new Map<string, number>();
  private readonly voterGoneSince = new Map<string, number>();
  /** Since when each learner has had no node record (ms, this clock), by member id. */
  private readonly learnerGoneSince = new Map<string, number>();
  private lastEvictionPass = 0;
  /** Members without a node record whose etcd answered (said once each, until they have a record again). */
  private readonly answeringWithoutRecord = new Set<string>();
  /** The voter manager's last failure (said once while it repeats); undefined after a pass that worked. */
  private voterError: string | undefined;
  private readonly now: () => number;

  constructor(
    private readonly log: Logger,
    /** Reconcile again now (after a voter change). */
    private readonly poke: () => void,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  /** Voters, then eviction; returns whether a voter change is under way. Failures are logged, never thrown. */
  async run(kv: LeaderKv, settings: ClusterSettings, self: string, kvCopy: () => FlatMapping | undefined, pending: boolean): Promise<{ voterChangePending: boolean; voterDueMs: number | undefined }> {
    const voterChangePending = await this.manageVoters(kv, settings, pending);
    await this.manageGone(kv, settings, self, kvCopy);
    return { voterChangePending, voterDueMs: this.voterDueMs(settings) };
  }

  /** ms until the first grace period of a voter without a record ends (undefined: none is running). */
  private voterDueMs(settings: ClusterSettings): number | undefined {
    const now = this.now();
    const left = [...this.voterGoneSince.values(), ...this.learnerGoneSince.values()].map((since) => settings.deadVoterGraceSeconds * 1000 - (now - since)).filter((ms) => ms > 0);
    return left.length > 0 ? Math.min(...left) : undefined;
  }

  private async manageVoters(kv: LeaderKv, settings: ClusterSettings, pending: boolean): Promise<boolean> {
    try {
      const [members, alive] = await Promise.all([kv.members(), kv.nodeRecords()]);
      const now = this.now();
      for (const m of members) if (m.isLearner && !m.name && !this.learnerSince.has(m.id)) this.learnerSince.set(m.id, now);
      const ages = agesAt(this.learnerSince, now);
      const withoutRecord = membersWithoutRecord(members, alive, settings.peerPort);
      const gone = new Set(withoutRecord.filter((m) => !m.isLearner).map((m) => m.id));
      keepSince(this.voterGoneSince, gone, now);
      keepSince(this.learnerGoneSince, new Set(withoutRecord.filter((m) => m.isLearner).map((m) => m.id)), now);
      const action = nextVoterAction({
        members,
        alive,
        maxVoters: settings.maxVoters,
        peerPort: settings.peerPort,
        learnerAgeMs: ages,
        learnerStartTimeoutMs: LEARNER_START_TIMEOUT_MS,
        voterGoneMs: agesAt(this.voterGoneSince, now),
        learnerGoneMs: agesAt(this.learnerGoneSince, now),
        deadVoterGraceMs: settings.deadVoterGraceSeconds * 1000,
      });
      pending = action.kind !== "none" || gone.size > 0 || members.some((m) => m.isLearner);
      if ((action.kind === "remove-dead-voter" || action.kind === "remove-dead-learner") && (await kv.answers(action.member, settings.clientPort))) {
        // Its record lapsed, but its etcd is up: an agent restarting, or a member whose etcd
        // restart (taking the local endpoint over, under load: 4 s in a CI run) outlasted
        // node_ttl. Removing it would throw a live member out for nothing.
        if (!this.answeringWithoutRecord.has(action.member.id)) {
          this.log.info(`voters: ${action.member.name || action.member.id} has had no node record for ${Math.round(action.goneMs / 1000)} s, but its etcd answers over the mesh: left in place`);
        }
        this.answeringWithoutRecord.add(action.member.id);
        return pending;
      }
      for (const id of this.answeringWithoutRecord) if (!gone.has(id) && !this.learnerGoneSince.has(id)) this.answeringWithoutRecord.delete(id);
      const done = await kv.applyVoterAction(action);
      if (done) {
        this.log.info(`voters: ${done}`);
        if (action.kind === "remove-dead-voter") this.voterGoneSince.delete(action.member.id);
        if (action.kind === "remove-dead-learner") this.learnerGoneSince.delete(action.member.id);
        await kv.appendVoterLog({ time: new Date(now).toISOString(), change: done }).catch((e) => this.log.debug(`voter log: ${errorMessage(e)}`));
        this.poke();
      }
      this.voterError = undefined;
    } catch (e) {
      // Expected for a moment, at debug: "learner … in sync with leader" until it catches up,
      // "unhealthy cluster" (etcd's strict reconfig check) while a member restarts its etcd to
      // take the local endpoint over. Anything else that keeps the voter manager from acting is
      // said once (a leader that cannot replace a dead voter must say why), then at debug.
      const msg = errorMessage(e);
      if (/in sync with leader|too many learner|unhealthy cluster/i.test(msg) || msg === this.voterError) this.log.debug(`voter manager: ${msg}`);
      else this.log.warn(`voter manager: ${msg}`);
      this.voterError = msg;
    }
    return pending;
  }

  /** Every EVICTION_INTERVAL_MS at most: mark gone neighbours, evict those gone past evict_after. */
  private async manageGone(kv: LeaderKv, settings: ClusterSettings, self: string, kvCopy: () => FlatMapping | undefined): Promise<void> {
    if (this.now() - this.lastEvictionPass < EVICTION_INTERVAL_MS) return;
    this.lastEvictionPass = this.now();
    try {
      // The watched copy of the config: re-reading it every pass grows with the cluster for nothing.
      const mapping = kvCopy();
      await kv.evictionPass({ self, evictAfterMs: settings.evictAfterSeconds * 1000, log: (l) => this.log.info(l), ...(mapping ? { mapping } : {}) });
    } catch (e) {
      this.log.debug(`eviction: ${errorMessage(e)}`);
    }
  }
}
