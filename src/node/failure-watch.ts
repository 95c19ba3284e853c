import { membersCutOff } from "../consensus/failure-evidence.ts";
import { LINKS_PREFIX, parseLinkReport, type LinkReport } from "../consensus/links.ts";
import { memberName } from "../mesh/neighbours.ts";
import { addressForKey } from "../mesh/yggdrasil/address.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";

/**
 * How the voters' failure watch works (ms).
 *
 * - `probeTimeoutMs`: a suspect's liveness port (node/probe-listener.ts) is given 1 s to answer
 *   over the mesh, as the proxies' upstream watch gives a voter (node/upstream-watch.ts). An
 *   accepted or refused connection means its host is up: the kernel answers a handshake even
 *   when the agent is starved of CPU, so a slow member is never taken for a dead one.
 * - `spareMs`: a suspect that answered, or whose record was ended, is left alone this long,
 *   unless a report about it changes once it has been spared `recheckMs`.
 * - `recheckMs`: while a suspect is neither spared nor ended, it is looked at again this often.
 * - `settleMs`: a changed report is looked at this long after it came, so the reports of one
 *   event (both ends of a link) are judged together.
 * - `maxProbes`: suspects probed in one round at most.
 * - `earlyValidMs`: a member is probed as soon as one report shows its peering down, while the
 *   other reports about it are still coming (each reporter writes within 0–2 s of seeing it,
 *   node/link-report.ts): a probe that started after that report and went unanswered stands for
 *   this long, so the member is ended as soon as the last report comes, not a probe later.
 */
export const FAILURE_WATCH = { probeTimeoutMs: 1000, earlyValidMs: 3000, spareMs: 10_000, recheckMs: 1000, settleMs: 100, maxProbes: 16 } as const;

export type FailureWatchTiming = { readonly [K in keyof typeof FAILURE_WATCH]: number };

export interface FailureWatchDeps {
  readonly log: Logger;
  /** Whether host:port answers within timeoutMs; never throws (util/tcp-probe.ts hostAnswers). */
  readonly probe: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Ends the member's node record now (consensus/registry.ts revokeNodeRecord): the lease revoked, or undefined when there was none. */
  readonly revoke: (publicKey: string) => Promise<string | undefined>;
  /** Every link report in the KV now (key → value), read once when this member takes the lead. */
  readonly readReports: () => Promise<ReadonlyMap<string, string>>;
  readonly now?: () => number;
  readonly timing?: FailureWatchTiming;
}

/** What the watch needs while this member is a voter (the leader included). */
export interface VoterContext {
  /** This member's public key: the root the reports are followed from. */
  readonly self: string;
  /** The members' liveness port (`meshnet/agent/port`). */
  readonly agentPort: number;
}

/**
 * The voters' fast failure detection. A member that dies is, by its node record, alive
 * until its lease runs out: `node_ttl` (5 s) after its last keep-alive, longer when the leader
 * changes meanwhile (a new etcd leader renews every lease to its full TTL). But its mesh
 * neighbours see their peerings with it go down at once (the TCP connections close) and report
 * that within a second or two (node/step-links.ts). So on every voter, whenever a link report
 * changes: the members no live member reports an up link to (consensus/failure-evidence.ts
 * membersCutOff) are probed on their liveness port over the mesh, and one that does not answer
 * has its record ended now (its lease revoked) — the whole cluster sees it failed, and a dead
 * voter's replacement starts, a few seconds sooner.
 *
 * Every voter judges, so a killed leader is judged by the others at once, not after the next
 * leader's agent has noticed it leads (its tick comes every 5 s at rest); a revocation needs a
 * quorum, so only the side that has one ends anything, and ending a record twice is a no-op.
 * Never on the word of the reports alone, and never when the fault is more likely the
 * voter's own: nothing is ended when the suspects are half the members with a report or more,
 * or when none of up to two members the reports do link to answered the same round's probe. A
 * member ended wrongly (cut off for longer than the probe, yet alive) loses only its record's
 * lease: its agent grants a new one and writes its record again once it is reachable, as
 * after any lapse. Kept reports follow the agent's watch (`observe`); never throws.
 */
export class FailureWatch {
  /** Reporter's public key → its report's value as the KV has it. */
  private readonly raw = new Map<string, string>();
  private readonly parsed = new Map<string, { readonly raw: string; readonly report: LinkReport | undefined }>();
  /** Suspects left alone (they answered, or their record was ended): since and until when (ms). */
  private readonly spared = new Map<string, { readonly since: number; readonly until: number }>();
  /** Members probed as soon as a report showed a peering with them down: when, and the answer. */
  private readonly early = new Map<string, { readonly started: number; readonly answer: Promise<boolean> }>();
  private lead: VoterContext | undefined;
  /** Reporters seen through the watch since this member became a voter: the seeding read must not undo them. */
  private watched = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private checking = false;
  private again = false;
  private readonly now: () => number;
  private readonly t: FailureWatchTiming;
  /** The last "nothing ended" reason said: said once at info level, not every recheck. */
  private lastHeld = "";

  constructor(private readonly d: FailureWatchDeps) {
    this.now = d.now ?? Date.now;
    this.t = d.timing ?? FAILURE_WATCH;
  }

  /** A watched change (any key; only link reports are kept). A changed report is looked at soon while a voter. */
  observe(type: "put" | "delete", key: string, value: string | undefined): void {
    if (!key.startsWith(LINKS_PREFIX)) return;
    const reporter = key.slice(LINKS_PREFIX.length);
    const before = this.raw.get(reporter);
    if (type === "delete" || value === undefined) this.raw.delete(reporter);
    else this.raw.set(reporter, value);
    if (before !== value) {
      this.liftSpares(reporter, `${before ?? ""}\n${value ?? ""}`);
      if (this.lead && value !== undefined && before !== undefined) this.probeEarly(wentDown(reporter, before, value));
    }
    this.watched.add(reporter);
    if (this.lead) this.wakeIn(this.t.settleMs);
  }

  /** At each agent tick: the context while this member is a voter (or the leader), undefined otherwise. */
  follow(ctx: VoterContext | undefined): void {
    const was = this.lead;
    this.lead = ctx;
    if (!ctx) {
      if (was) this.stopTimer();
      return;
    }
    if (was) return;
    // Just became a voter: reports written before the watch began are read once.
    this.watched = new Set();
    this.spared.clear();
    this.early.clear();
    void this.seed();
  }

  /**
   * The reports are read once more (a new watch of them began: changes before it were not
   * seen). Before `follow` gives a context this only forgets what was watched; the read comes
   * with the context.
   */
  reseed(): void {
    this.watched = new Set();
    if (this.lead) void this.seed();
  }

  stop(): void {
    this.lead = undefined;
    this.stopTimer();
  }

  /** One look (the timer's; public for tests): probe the cut-off members, end those that do not answer. */
  async check(): Promise<void> {
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = true;
    try {
      await this.look();
    } catch (e) {
      this.d.log.debug(`failure watch: ${errorMessage(e)}`);
    } finally {
      this.checking = false;
    }
    if (this.again) {
      this.again = false;
      this.wakeIn(0);
    }
  }

  private async seed(): Promise<void> {
    try {
      const all = await this.d.readReports();
      const read = new Set<string>();
      for (const [key, value] of all) {
        const reporter = key.startsWith(LINKS_PREFIX) ? key.slice(LINKS_PREFIX.length) : key;
        read.add(reporter);
        if (!this.watched.has(reporter)) this.raw.set(reporter, value);
      }
      // A report kept from an earlier time as a voter may have gone while unwatched.
      for (const reporter of [...this.raw.keys()]) if (!read.has(reporter) && !this.watched.has(reporter)) this.raw.delete(reporter);
    } catch (e) {
      this.d.log.debug(`failure watch: cannot read the link reports yet: ${errorMessage(e)}`);
    }
    if (this.lead) this.wakeIn(0);
  }

  private reports(): Map<string, LinkReport> {
    const out = new Map<string, LinkReport>();
    for (const [reporter, raw] of this.raw) {
      let entry = this.parsed.get(reporter);
      if (entry?.raw !== raw) {
        const r = parseLinkReport(`${LINKS_PREFIX}${reporter}`, raw);
        entry = { raw, report: r.ok ? r.report : undefined };
        this.parsed.set(reporter, entry);
      }
      if (entry.report) out.set(reporter, entry.report);
    }
    for (const k of this.parsed.keys()) if (!this.raw.has(k)) this.parsed.delete(k);
    return out;
  }

  private async look(): Promise<void> {
    const lead = this.lead;
    if (!lead) return;
    const reports = this.reports();
    const { cutOff, reached } = membersCutOff(reports, lead.self);
    const now = this.now();
    for (const [k, s] of this.spared) if (s.until <= now) this.spared.delete(k);
    const suspects = cutOff.filter((k) => !this.spared.has(k)).slice(0, this.t.maxProbes);
    if (suspects.length === 0) return;
    if (cutOff.length * 2 >= reports.size) {
      this.held(`failure watch: ${cutOff.length} of ${reports.size} members look cut off by the link reports (${cutOff.map(memberName).join(", ")}); more likely this member's fault: nothing ended`);
      return this.wakeIn(this.t.recheckMs);
    }
    const controls = reached.filter((k) => k !== lead.self && reports.has(k)).slice(0, 2);
    const answers = await Promise.all([...suspects.map((k) => this.earlyAnswer(k) ?? this.probe(k)), ...controls.map((k) => this.probe(k))]);
    if (!answers.slice(suspects.length).some(Boolean)) {
      this.held(`failure watch: ${suspects.map(memberName).join(", ")} look cut off by the link reports, but no linked member answered either (${controls.length} asked): nothing ended`);
      return this.wakeIn(this.t.recheckMs);
    }
    this.lastHeld = "";
    for (const [i, k] of suspects.entries()) {
      if (!this.lead) return;
      this.spared.set(k, { since: this.now(), until: this.now() + this.t.spareMs });
      if (answers[i]) {
        this.d.log.info(`failure watch: ${memberName(k)} looks cut off by the link reports but answered over the mesh: left alone for ${Math.round(this.t.spareMs / 1000)} s unless the reports about it change`);
        continue;
      }
      // The reports may have changed during the probe: still cut off?
      if (!membersCutOff(this.reports(), lead.self).cutOff.includes(k)) continue;
      let lease: string | undefined;
      try {
        lease = await this.d.revoke(k);
      } catch (e) {
        // The KV did not take it (no quorum on this side, a leader change): try again soon.
        this.spared.delete(k);
        this.d.log.debug(`failure watch: cannot end ${memberName(k)}'s record: ${errorMessage(e)}`);
        this.wakeIn(this.t.recheckMs);
        continue;
      }
      if (lease !== undefined) {
        this.d.log.info(`${memberName(k)} (${addressForKey(k)}): no live member reports an up link to it and it did not answer over the mesh within ${this.t.probeTimeoutMs} ms: its node record is ended now (lease ${lease} revoked) rather than when its TTL runs out`);
      }
    }
  }

  private probe(k: string): Promise<boolean> {
    return this.lead ? this.d.probe(addressForKey(k), this.lead.agentPort, this.t.probeTimeoutMs) : Promise.resolve(true);
  }

  /** Probes now the members a report just showed a peering with going down (see `earlyValidMs`). */
  private probeEarly(keys: readonly string[]): void {
    const now = this.now();
    for (const [k, e] of this.early) if (now - e.started > this.t.earlyValidMs) this.early.delete(k);
    for (const k of keys) {
      if (k === this.lead?.self || this.early.has(k) || this.early.size >= this.t.maxProbes) continue;
      this.early.set(k, { started: now, answer: this.probe(k) });
    }
  }

  /** An early probe of `k` still standing: its answer (pending or not); undefined when there is none. */
  private earlyAnswer(k: string): Promise<boolean> | undefined {
    const e = this.early.get(k);
    if (!e) return undefined;
    if (this.now() - e.started > this.t.earlyValidMs) {
      this.early.delete(k);
      return undefined;
    }
    // An answer counts only once: a member that answered is probed afresh next time.
    return e.answer.then((a) => {
      if (a) this.early.delete(k);
      return a;
    });
  }

  /**
   * New evidence about a spared member (its own report, or a report naming it, changed) lifts
   * its spare once it is `recheckMs` old: a member that answered a moment ago (a report lagging
   * after the cluster formed) and is killed now is probed again at once, not 10 s later.
   */
  private liftSpares(reporter: string, text: string): void {
    const now = this.now();
    for (const [k, s] of this.spared) {
      if (now - s.since >= this.t.recheckMs && (k === reporter || text.includes(k))) this.spared.delete(k);
    }
  }

  /** Why nothing was ended, at info level when it differs from the last reason given. */
  private held(reason: string): void {
    if (reason === this.lastHeld) return;
    this.lastHeld = reason;
    this.d.log.info(reason);
  }

  private wakeIn(ms: number): void {
    const due = this.now() + ms;
    if (this.timer && this.timerDue <= due) return;
    this.stopTimer();
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Number.POSITIVE_INFINITY;
      void this.check();
    }, ms);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
  }
}

/** The members `reporter`'s report listed an up peering with before and no longer does. Never throws. */
function wentDown(reporter: string, before: string, after: string): string[] {
  const upIn = (raw: string): Set<string> => {
    const r = parseLinkReport(`${LINKS_PREFIX}${reporter}`, raw);
    return new Set(r.ok ? r.report.peerings.filter((p) => p.up && p.key !== undefined).map((p) => p.key as string) : []);
  };
  const now = upIn(after);
  return [...upIn(before)].filter((k) => !now.has(k));
}
