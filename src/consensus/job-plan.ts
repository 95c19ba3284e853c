import { ONE_SLOT, memberSlot, type ClaimEntry, type Job, type JobSchedule, type RunEntry } from "./jobs.ts";

/*
 * What the runs and claims of a job (consensus/jobs.ts) add up to: the state of each slot, of
 * the job, and what a member may claim next. Shared by the runner and `job ls` / `job show`,
 * so both tell the same story. Pure.
 */

/** How a run ended, or that it has not (running: its claim stands; lost: its claim is gone without a result). */
export type RunOutcome = "running" | "lost" | "succeeded" | "failed" | "cancelled";

/**
 * A run's outcome: succeeded (exit 0), failed (another exit, a signal, the timeout, or it could
 * not start), cancelled; without an end: running while a claim names it, else lost (its member
 * died or was cut off before it could record an end); lost too when its runner ended it for
 * want of its claim (`lost`: fencing). Pure; throws nothing.
 */
export function runOutcome(run: RunEntry, claims: readonly ClaimEntry[]): RunOutcome {
  if (run.lost) return "lost";
  if (run.endedAt === undefined) return claims.some((c) => c.slot === run.slot && c.run === run.id) ? "running" : "lost";
  if (run.cancelled) return "cancelled";
  return run.exitCode === 0 && !run.timedOut ? "succeeded" : "failed";
}

/** A slot's state: done (succeeded, failed after its retries, cancelled), running, or pending (waiting for a member to claim it). */
export type SlotState = "pending" | "running" | "succeeded" | "failed" | "cancelled";

export interface SlotView {
  readonly slot: string;
  readonly state: SlotState;
  /** The attempt a member claims next (1 + the highest so far). */
  readonly nextAttempt: number;
  /** Failed runs so far (lost runs do not count: the command never ended, its member did). */
  readonly failures: number;
}

/**
 * The slot of a scheduled run due at `due` (ms since the epoch): its UTC time to the second,
 * `20261201T041500Z`, so that the claim key names the due time and sorts by it. Pure.
 */
export function scheduleSlot(due: number): string {
  return new Date(due).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/**
 * The latest due time of `schedule` at `now` (ms since the epoch): `first`, then each `every`
 * seconds after; undefined before `first`. Slots missed while no member could run them are not
 * run one by one: only this latest one is due (a catch-up runs once). Pure; throws nothing.
 */
export function dueTime(schedule: JobSchedule, now: number): number | undefined {
  if (now < schedule.first) return undefined;
  if (schedule.every === undefined) return schedule.first;
  const period = schedule.every * 1000;
  return schedule.first + Math.floor((now - schedule.first) / period) * period;
}

/** The first due time of `schedule` after `now`, or undefined when none is left (`--at` passed). Pure. */
export function nextDueTime(schedule: JobSchedule, now: number): number | undefined {
  if (now < schedule.first) return schedule.first;
  if (schedule.every === undefined) return undefined;
  return (dueTime(schedule, now) as number) + schedule.every * 1000;
}

/** The slots of a job: `one` (for `--on one` and services), or each listed member's short key; a scheduled job's: those it ran. Pure. */
export function jobSlots(job: Job): string[] {
  if (!job.spec) return [];
  if (job.spec.schedule) return [...new Set(job.runs.map((r) => r.slot))].sort();
  return job.spec.members === undefined || job.spec.restart ? [ONE_SLOT] : job.spec.members.map(memberSlot);
}

/** A service's run that ended sooner than this after its start counts as a quick exit (restartDelayMs). */
export const QUICK_EXIT_MS = 10_000;
/** The longest wait before a service that keeps exiting is started again. */
export const MAX_RESTART_DELAY_MS = 60_000;

/**
 * How long after its last run ended a service is started again: 0 after a run that lasted
 * QUICK_EXIT_MS or more (or was lost with its member), else 1 s doubled for each quick exit in a
 * row, up to MAX_RESTART_DELAY_MS, so that a command that fails at once does not spin through
 * the members and the KV. Pure; throws nothing.
 */
export function restartDelayMs(runs: readonly RunEntry[]): number {
  let quick = 0;
  for (const r of [...runs].sort((a, b) => b.attempt - a.attempt)) {
    if (r.endedAt === undefined || r.lost || r.endedAt - r.startedAt >= QUICK_EXIT_MS) break;
    quick++;
  }
  return quick === 0 ? 0 : Math.min(1000 * 2 ** (quick - 1), MAX_RESTART_DELAY_MS);
}

/**
 * The state of `slot` of `job`: succeeded once a run did; failed once more runs failed than
 * `retries` allows; running while a claim stands; cancelled once the job is; else pending.
 * Pure; throws nothing.
 */
export function slotView(job: Job, slot: string): SlotView {
  const runs = job.runs.filter((r) => r.slot === slot);
  const outcomes = runs.map((r) => runOutcome(r, job.claims));
  const failures = outcomes.filter((o) => o === "failed").length;
  const nextAttempt = runs.reduce((n, r) => Math.max(n, r.attempt), 0) + 1;
  let state: SlotState;
  if (job.spec?.restart) {
    // A service is never done: it runs, waits to run again, or is cancelled.
    state = job.claims.some((c) => c.slot === slot) ? "running" : job.cancelled ? "cancelled" : "pending";
    return { slot, state, nextAttempt, failures };
  }
  if (outcomes.includes("succeeded")) state = "succeeded";
  else if (failures > (job.spec?.retries ?? 0)) state = "failed";
  else if (job.claims.some((c) => c.slot === slot)) state = "running";
  else if (job.cancelled || outcomes.includes("cancelled")) state = "cancelled";
  else state = "pending";
  return { slot, state, nextAttempt, failures };
}

/** A job's state as `job ls` shows it; `bad spec`: it never runs; `scheduled`: waiting for a due time. */
export type JobState = SlotState | "scheduled" | "bad spec";

/**
 * The job's state from its slots': running while any runs; else pending while any waits (and it
 * is not cancelled); else failed when any failed, cancelled when any was, succeeded when all did.
 * Pure; throws nothing.
 */
export function jobState(job: Job, now = Date.now()): JobState {
  if (!job.spec) return "bad spec";
  const schedule = job.spec.schedule;
  if (schedule) {
    // Scheduled: running while a run is; else waiting for the next due time, or as the last
    // due slot ended once none is left (`--at` passed).
    if (job.claims.length > 0) return "running";
    if (job.cancelled) return "cancelled";
    const due = dueTime(schedule, now);
    if (nextDueTime(schedule, now) !== undefined && (due === undefined || slotView(job, scheduleSlot(due)).state !== "pending")) return "scheduled";
    return due === undefined ? "scheduled" : slotView(job, scheduleSlot(due)).state;
  }
  const states = jobSlots(job).map((s) => slotView(job, s).state);
  if (states.includes("running")) return "running";
  if (states.includes("pending")) return "pending";
  if (states.includes("failed")) return "failed";
  if (states.includes("cancelled") || (job.cancelled && states.length === 0)) return "cancelled";
  return states.length === 0 ? "pending" : "succeeded";
}

/**
 * What member `publicKey` may try to claim of `job`: the slot and attempt, and not before when
 * (ms since the epoch: a service's restart delay, 0 for tasks), or undefined.
 * `one`: its slot while pending (every member may try; the put-if-absent claim picks one);
 * `all` / `LABEL=VALUE`: the member's own slot while pending, when the job lists it; a service:
 * the one slot, by any member (`one`) or any member the job lists (`LABEL=VALUE`).
 * A scheduled job: the slot of its latest due time while that is pending and no run of the
 * job is going (runs never overlap), else the next due time's slot with notBefore that time.
 * Nothing for a cancelled job or one whose spec is bad. Pure; throws nothing.
 */
export function nextClaim(job: Job, publicKey: string, now = Date.now()): { slot: string; attempt: number; notBefore: number } | undefined {
  if (!job.spec || job.cancelled) return undefined;
  const schedule = job.spec.schedule;
  if (schedule) {
    if (job.claims.length > 0) return undefined;
    const due = dueTime(schedule, now);
    if (due !== undefined) {
      const v = slotView(job, scheduleSlot(due));
      if (v.state === "pending") return { slot: v.slot, attempt: v.nextAttempt, notBefore: 0 };
    }
    const next = nextDueTime(schedule, now);
    return next === undefined ? undefined : { slot: scheduleSlot(next), attempt: 1, notBefore: next };
  }
  const members = job.spec.members;
  if (members !== undefined && !members.includes(publicKey)) return undefined;
  const slot = members === undefined || job.spec.restart ? ONE_SLOT : memberSlot(publicKey);
  const v = slotView(job, slot);
  if (v.state !== "pending") return undefined;
  const runs = job.runs.filter((r) => r.slot === slot);
  // A lost run's end (recorded late, by its fenced runner) is not when the slot became free.
  const lastEnd = runs.reduce((t, r) => Math.max(t, r.lost ? 0 : (r.endedAt ?? 0)), 0);
  const notBefore = job.spec.restart ? lastEnd + restartDelayMs(runs) : 0;
  return { slot, attempt: v.nextAttempt, notBefore };
}
