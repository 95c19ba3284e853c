import { linkReportKey } from "../consensus/links.ts";
import type { NodeRegistration } from "../consensus/registry.ts";
import type { PeerInfo } from "../mesh/yggdrasil/admin.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { LINK_REPORT_TIMING, LinkReportSchedule, buildLinkReport, shapeOfPeers, type LinkReportTiming } from "./link-report.ts";

/** What the reporter writes on: the node record's lease (consensus/registry.ts). */
export type LeaseWriter = Pick<NodeRegistration, "leaseGeneration" | "putOnLease">;

/** Who this member is, and the lease its record is on: set by the agent at each tick. */
export interface LinkTarget {
  readonly publicKey: string;
  /** "0.4" | "0.5". */
  readonly major: string;
  readonly lease: LeaseWriter | undefined;
}

export interface LinkReporterDeps {
  readonly log: Logger;
  /** getPeers, when the peer loop has not said anything for a while (it does not run without peers to dial). */
  readonly readPeers: () => Promise<PeerInfo[]>;
  /** 0.5: this member's parent in Yggdrasil's spanning tree; undefined on 0.4 or when it cannot be asked. */
  readonly readTreeParent: () => Promise<string | undefined>;
  readonly now?: () => number;
  readonly timing?: LinkReportTiming;
}

/** A look at getPeers older than this is asked again at a tick (the peer loop looks every second). */
const PEERS_STALE_MS = 3_000;

/**
 * 0.5: the tree parent is asked at a tick at most this often (ms), and a new one is written like
 * a changed peering. The tree settles for a while after a cluster forms or a member restarts,
 * without any peering changing; at the 30 s refresh alone, `links A B` would route by a parent
 * up to half a minute old. One admin call per 5 s is next to nothing.
 */
export const TREE_LOOK_MS = 5_000;

/**
 * The agent step that keeps this member's link report (consensus/links.ts) in the KV, at
 * `raptiformica/links/<key>` on the same lease as its node record, so it vanishes with the
 * member and is written again on a new lease. The peerings come from the mesh peer loop
 * (`observe`, every second, which costs nothing more: it reads getPeers anyway) or, when that
 * is quiet, from getPeers at a tick; when to write is LinkReportSchedule's rule, with the tree
 * parent (0.5, asked at a tick every TREE_LOOK_MS and at each write) counted as part of the
 * report's shape. Never throws: a report that cannot be written now is
 * written at a later look.
 */
export class LinkReporter {
  private target?: LinkTarget;
  private peers?: { readonly list: readonly PeerInfo[]; readonly at: number };
  private treeParent?: string;
  /** When the tree parent was last asked (ms, this.now's clock). */
  private treeAt = Number.NEGATIVE_INFINITY;
  private readonly schedule: LinkReportSchedule;
  private writing = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (ms, this.now's clock). */
  private timerDue = Number.POSITIVE_INFINITY;
  private lastProblem = "";
  private readonly now: () => number;
  private readonly timing: LinkReportTiming;

  constructor(private readonly d: LinkReporterDeps) {
    this.now = d.now ?? Date.now;
    this.timing = d.timing ?? LINK_REPORT_TIMING;
    this.schedule = new LinkReportSchedule(this.timing);
  }

  /** What getPeers said just now (the mesh peer loop). Writes when the schedule says so. */
  observe(peers: readonly PeerInfo[]): void {
    this.peers = { list: peers, at: this.now() };
    void this.flush();
  }

  /**
   * At each agent tick once the node record is written: who this member is and the lease to
   * write on; asks getPeers when the peer loop has been quiet; then writes when the schedule
   * says so.
   */
  async tick(target: LinkTarget): Promise<void> {
    this.target = target;
    const now = this.now();
    if (!this.peers || now - this.peers.at > PEERS_STALE_MS) {
      try {
        this.peers = { list: await this.d.readPeers(), at: this.now() };
      } catch (e) {
        this.problem(`cannot read this member's peerings for its link report: ${errorMessage(e)}`);
        return;
      }
    }
    if (target.major === "0.5" && !(now - this.treeAt < TREE_LOOK_MS)) await this.lookAtTree();
    await this.flush();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    this.target = undefined;
  }

  /** Writes the report if the schedule says so; one write at a time, a later look while one runs is kept for after it. */
  private async flush(): Promise<void> {
    if (this.writing) {
      this.again = true;
      return;
    }
    const target = this.target;
    const peers = this.peers;
    const lease = target?.lease?.leaseGeneration;
    if (!target || !peers || lease === undefined) return;
    // Every second: only the shape is made and compared; the report itself only to be written.
    const shape = this.shapeWith(shapeOfPeers(peers.list, target.major));
    const now = this.now();
    const decision = this.schedule.decide(now, shape, lease);
    if (!decision.write) {
      if (decision.againInMs !== undefined) this.wakeIn(decision.againInMs);
      return;
    }
    this.writing = true;
    try {
      // 0.5: the tree parent as of now; one that cannot be asked stays as it was.
      if (target.major === "0.5") await this.lookAtTree();
      else this.treeParent = undefined;
      const report = buildLinkReport(peers.list, { publicKey: target.publicKey, major: target.major, readAt: peers.at, treeParent: this.treeParent });
      const written = await target.lease?.putOnLease(linkReportKey(target.publicKey), JSON.stringify(report));
      if (written !== undefined) {
        this.schedule.wrote(now, this.shapeWith(shapeOfPeers(peers.list, target.major)), written);
        this.lastProblem = "";
        this.wakeIn(this.timing.refreshMs);
      }
    } catch (e) {
      this.problem(`cannot write this member's link report: ${errorMessage(e)}`);
    } finally {
      this.writing = false;
    }
    if (this.again) {
      this.again = false;
      await this.flush();
    }
  }

  /** 0.5: asks the tree parent now; one that cannot be asked stays as it was. */
  private async lookAtTree(): Promise<void> {
    this.treeAt = this.now();
    this.treeParent = await this.d.readTreeParent().catch(() => this.treeParent);
  }

  /** The peerings' shape with the tree parent as known now: a new parent is a change to write. */
  private shapeWith(peerShape: string): string {
    return `${peerShape}|tree:${this.treeParent ?? "-"}`;
  }

  /**
   * Looks again in `ms` (a change held back by the 2 s gap, or the refresh), one timer at a
   * time: a timer due sooner is kept (the peer loop asks every second; resetting it each time
   * would cost more than the look).
   */
  private wakeIn(ms: number): void {
    const due = this.now() + Math.max(0, ms);
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDue = Number.POSITIVE_INFINITY;
        void this.flush();
      },
      Math.max(0, ms),
    );
    this.timer.unref();
  }

  /** Logged at debug level once per distinct problem: the KV being away is the session's to report. */
  private problem(message: string): void {
    if (message !== this.lastProblem) this.d.log.debug(message);
    this.lastProblem = message;
  }
}
