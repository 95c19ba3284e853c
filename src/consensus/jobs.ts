import { z } from "zod";
import { KEY_ROOT } from "../config/flatten.ts";

/*
 * Jobs in the KV: commands run by members' agents (ops/job/runner.ts), one folder per job:
 *
 *   raptiformica/jobs/<name>/spec              → JobSpec as JSON (written once, by `job run`)
 *   raptiformica/jobs/<name>/cancelled         → JobCancel as JSON (written by `job cancel`)
 *   raptiformica/jobs/<name>/runs/<run id>     → JobRun as JSON (one per attempt, kept)
 *   raptiformica/jobs/<name>/claims/<slot>     → JobClaim as JSON, on the runner's node record lease
 *
 * A slot is what one run at a time may hold: `one` for `--on one`, a member's 16-hex-digit
 * short key for `--on all` / `--on LABEL=VALUE` (one run per member), the due time of a
 * scheduled job's run (`20261201T041500Z`, job-plan.ts scheduleSlot). A claim is created with a
 * put-if-absent transaction together with its run record; its create revision is the run's
 * fencing token, and a run's result is written only while that claim still stands.
 * Like node records, never mirrored into a local cache (consensus/kv-config.ts isEphemeralKey).
 * Every reader parses the whole prefix with parseJobEntries: a bad entry is a problem, the rest
 * still work; a job whose spec is bad never runs.
 */

/** The KV prefix of jobs. */
export const JOBS_PREFIX = `${KEY_ROOT}/jobs/`;

/** How many run records of a service are kept: each claim deletes the one this many attempts back. */
export const SERVICE_RUNS_KEPT = 20;

/** How much of a run's output (stdout and stderr together, the last bytes) its record keeps. */
export const OUTPUT_TAIL_BYTES = 4096;

/** A job's name: what its keys and the log files on members are named by. */
export const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A label's name and value in a placement (`--on LABEL=VALUE`) and in the config. */
export const LABEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LABEL_VALUE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The slot of `--on one` jobs and of services. */
export const ONE_SLOT = "one";

/** Where a job runs: once somewhere, once on every member alive at submission, or once on each of those with a label. */
export type Placement = { readonly kind: "one" } | { readonly kind: "all" } | { readonly kind: "label"; readonly label: string; readonly value: string };

/**
 * Parses `--on`: `one`, `all`, or `LABEL=VALUE` (LABEL as {@link LABEL_NAME}; VALUE letters,
 * digits and `_.:-`, up to 128). Returns the placement, or a sentence saying what is wrong.
 * Pure; throws nothing.
 */
export function parsePlacement(text: string): { ok: true; placement: Placement } | { ok: false; problem: string } {
  if (text === "one" || text === "all") return { ok: true, placement: { kind: text } };
  const at = text.indexOf("=");
  if (at < 0) return { ok: false, problem: `"${text}" is not a placement: use one, all or LABEL=VALUE (e.g. arch=aarch64)` };
  const label = text.slice(0, at);
  const value = text.slice(at + 1);
  if (!LABEL_NAME.test(label)) return { ok: false, problem: `"${label}" is not a label name (letters, digits and _.- up to 64, starting with a letter or digit)` };
  if (!LABEL_VALUE.test(value)) return { ok: false, problem: `"${value}" is not a label value (letters, digits and _.:- up to 128)` };
  return { ok: true, placement: { kind: "label", label, value } };
}

/** A placement as `--on` writes it. Pure; throws nothing. */
export function placementText(p: Placement): string {
  return p.kind === "label" ? `${p.label}=${p.value}` : p.kind;
}

const hexKey = z.string().regex(/^[0-9a-f]{64}$/, "a 64-digit lowercase hex public key");
const ms = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const placementString = z.string().superRefine((s, ctx) => {
  const p = parsePlacement(s);
  if (!p.ok) ctx.addIssue({ code: z.ZodIssueCode.custom, message: p.problem });
});

/** The longest `--timeout`: 30 days. */
export const MAX_TIMEOUT_SECONDS = 30 * 86_400;
/** The most `--retries`. */
export const MAX_RETRIES = 100;
/** The shortest `--every`: 1 s (slots are named to the second). */
export const MIN_EVERY_SECONDS = 1;
/** The longest `--every`: 366 days. */
export const MAX_EVERY_SECONDS = 366 * 86_400;
/** How many run records of a scheduled job are kept: each claim deletes the oldest beyond this. */
export const SCHEDULE_RUNS_KEPT = 50;

/**
 * When a scheduled job is due: at `first` (ms since the epoch, a whole second), then every
 * `every` seconds when given (`--every`); without `every` once (`--at`).
 */
export const JobScheduleSchema = z
  .object({
    first: ms.refine((t) => t % 1000 === 0, "a whole second"),
    every: z.number().int().min(MIN_EVERY_SECONDS).max(MAX_EVERY_SECONDS).optional(),
  })
  .strict();
export type JobSchedule = z.infer<typeof JobScheduleSchema>;

export const JobSpecSchema = z
  .object({
    v: z.literal(1),
    name: z.string().regex(JOB_NAME),
    /** The command and its arguments, run without a shell. */
    argv: z.array(z.string().max(8192)).min(1).max(1024),
    /** `one`, `all` or `LABEL=VALUE` (parsePlacement). */
    on: placementString,
    /** Failed runs run again up to this many times (per slot). */
    retries: z.number().int().min(0).max(MAX_RETRIES),
    /** A run still going after this long has its process group killed and counts as failed. */
    timeoutSeconds: z.number().positive().max(MAX_TIMEOUT_SECONDS).optional(),
    /** When it was submitted, ms since the epoch (the submitting member's clock). */
    createdAt: ms,
    /**
     * `all` / `LABEL=VALUE`: the members it runs on (their public keys), resolved when it was
     * submitted: the alive members, with the label for `LABEL=VALUE`.
     */
    members: z.array(hexKey).max(10_000).optional(),
    /**
     * `always`: a service, not a task: one instance kept running, on any member for `one`, on
     * one of `members` for `LABEL=VALUE`; started again whenever it ends (with a backoff when
     * it ends quickly, job-plan.ts restartDelayMs) or its member is lost.
     */
    restart: z.literal("always").optional(),
    /**
     * `--every` / `--at`: run at these times (job-plan.ts dueTime), each due time a slot of its
     * own (scheduleSlot) claimed once cluster-wide; `--on one` only, not a service.
     */
    schedule: JobScheduleSchema.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.on === "one") !== (s.members === undefined)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "members is given for `all` and `LABEL=VALUE` jobs only, and always for them", path: ["members"] });
    if (s.schedule && (s.on !== "one" || s.restart)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "a schedule is for `--on one` jobs that are not services", path: ["schedule"] });
    if (s.restart && s.on === "all") ctx.addIssue({ code: z.ZodIssueCode.custom, message: "a service (restart always) runs one instance: on one or LABEL=VALUE, not all", path: ["restart"] });
  });
export type JobSpec = z.infer<typeof JobSpecSchema>;

export const JobCancelSchema = z.object({ v: z.literal(1), at: ms }).strict();
export type JobCancel = z.infer<typeof JobCancelSchema>;

export const JobRunSchema = z
  .object({
    v: z.literal(1),
    id: z.string().max(128),
    slot: z.string().max(64),
    /** 1 for the first run of its slot, then 2, 3 … */
    attempt: z.number().int().min(1).max(MAX_RETRIES + 10_000),
    /** The member that runs it: its name as `members` shows it, and its key. */
    member: z.string().max(256),
    publicKey: hexKey,
    startedAt: ms,
    /** Set once it ended; absent while running (or when its runner was lost before it could say). */
    endedAt: ms.optional(),
    /** The command's exit code; null when it was ended by a signal or never started. */
    exitCode: z.number().int().nullable().optional(),
    signal: z.string().max(32).optional(),
    timedOut: z.boolean().optional(),
    cancelled: z.boolean().optional(),
    /** Why the command could not be started (ENOENT …). */
    error: z.string().max(1024).optional(),
    /** The last OUTPUT_TAIL_BYTES of its output (stdout and stderr as they came). */
    outputTail: z.string().max(2 * OUTPUT_TAIL_BYTES).optional(),
    /** The claim's create revision, given to the command as RAPTIFORMICA_JOB_FENCE. */
    fence: z.string().regex(/^[0-9]{1,20}$/).optional(),
    /**
     * Ended by its own runner because its claim was gone or could not be confirmed for the
     * claim lease's TTL (fencing): not a result of the command; the run counts as lost (it runs
     * again, no retry used). Written after the fact, only while the record is still the one
     * claimed (job-kv.ts recordLostEnd).
     */
    lost: z.literal(true).optional(),
  })
  .strict();
export type JobRun = z.infer<typeof JobRunSchema>;

export const JobClaimSchema = z.object({ v: z.literal(1), run: z.string().max(128), publicKey: hexKey, member: z.string().max(256) }).strict();
export type JobClaim = z.infer<typeof JobClaimSchema>;

export function jobSpecKey(name: string): string {
  return `${JOBS_PREFIX}${name}/spec`;
}
export function jobCancelKey(name: string): string {
  return `${JOBS_PREFIX}${name}/cancelled`;
}
export function jobRunKey(name: string, id: string): string {
  return `${JOBS_PREFIX}${name}/runs/${id}`;
}
export function jobClaimKey(name: string, slot: string): string {
  return `${JOBS_PREFIX}${name}/claims/${slot}`;
}

/** The slot of a member in `all` / label jobs: the first 16 hex digits of its key. Pure. */
export function memberSlot(publicKey: string): string {
  return publicKey.slice(0, 16);
}

/** The id of a slot's `attempt`-th run: `one-2`, `3fa9c0d1e2b3a4f5-1`. Pure. */
export function runId(slot: string, attempt: number): string {
  return `${slot}-${attempt}`;
}

/** A KV entry under JOBS_PREFIX as read: key, value and its revisions (decimal strings). */
export interface JobEntry {
  readonly key: string;
  readonly value: string;
  readonly createRevision: string;
  readonly modRevision: string;
}

/** A run record with the revision its key was created at. */
export interface RunEntry extends JobRun {
  readonly createRevision: string;
}

/** A live claim, with its create revision (the fencing token of its run). */
export interface ClaimEntry extends JobClaim {
  readonly slot: string;
  readonly createRevision: string;
}

/** One job as the KV holds it. `spec` undefined: its spec is missing or bad (it never runs; see the problems). */
export interface Job {
  readonly name: string;
  readonly spec?: JobSpec;
  readonly specRevision?: string;
  readonly cancelled?: JobCancel;
  readonly runs: readonly RunEntry[];
  readonly claims: readonly ClaimEntry[];
}

/** An entry under JOBS_PREFIX that could not be used: its key and one sentence saying why and what to do. */
export interface JobProblem {
  readonly job: string;
  readonly key: string;
  readonly message: string;
}

function firstIssue(e: z.ZodError): string {
  const i = e.issues[0];
  return i ? `${i.path.length > 0 ? `${i.path.join(".")}: ` : ""}${i.message}` : "invalid";
}

function parseJson<S extends z.ZodTypeAny>(schema: S, value: string): { ok: true; data: z.infer<S> } | { ok: false; why: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return { ok: false, why: "not JSON" };
  }
  const r = schema.safeParse(doc);
  return r.success ? { ok: true, data: r.data } : { ok: false, why: firstIssue(r.error) };
}

/**
 * Every job under JOBS_PREFIX from `entries` (one range read), sorted by name, with each
 * entry that could not be used as a problem: a value that is not JSON or not the format, a spec
 * whose name differs from its folder, a run or claim whose id differs from its key, a key of no
 * known kind. A job with a bad or missing spec is listed without `spec` (it never runs); its
 * good runs are still shown. The one parser every reader (CLI, runner) goes through.
 * Pure; throws nothing.
 */
export function parseJobEntries(entries: readonly JobEntry[]): { jobs: Job[]; problems: JobProblem[] } {
  const jobs = new Map<string, { name: string; spec?: JobSpec; specRevision?: string; cancelled?: JobCancel; runs: RunEntry[]; claims: ClaimEntry[]; specSeen: boolean }>();
  const problems: JobProblem[] = [];
  const jobOf = (name: string) => {
    let j = jobs.get(name);
    if (!j) jobs.set(name, (j = { name, runs: [], claims: [], specSeen: false }));
    return j;
  };
  for (const e of entries) {
    if (!e.key.startsWith(JOBS_PREFIX)) continue;
    const parts = e.key.slice(JOBS_PREFIX.length).split("/");
    const name = parts[0] ?? "";
    const bad = (why: string, what: string) => problems.push({ job: name, key: e.key, message: `${what} at ${e.key} cannot be used (${why}); it is ignored. Delete it (\`etcdctl del ${e.key}\` on a member) or submit the job again under another name.` });
    if (!JOB_NAME.test(name)) {
      problems.push({ job: name, key: e.key, message: `The key ${e.key} is not under a job name raptiformica can use (letters, digits and _.- up to 64); it is ignored. Delete it (\`etcdctl del --prefix ${JOBS_PREFIX}${name}\` on a member).` });
      continue;
    }
    const job = jobOf(name);
    if (parts.length === 2 && parts[1] === "spec") {
      job.specSeen = true;
      const r = parseJson(JobSpecSchema, e.value);
      if (!r.ok) bad(r.why, `The spec of job ${name}`);
      else if (r.data.name !== name) bad(`it names job ${r.data.name}`, `The spec of job ${name}`);
      else {
        job.spec = r.data;
        job.specRevision = e.modRevision;
      }
    } else if (parts.length === 2 && parts[1] === "cancelled") {
      const r = parseJson(JobCancelSchema, e.value);
      // A cancel mark that cannot be read still cancels: stopping is the safe reading.
      job.cancelled = r.ok ? r.data : { v: 1, at: 0 };
      if (!r.ok) bad(r.why, `The cancel mark of job ${name}`);
    } else if (parts.length === 3 && parts[1] === "runs") {
      const r = parseJson(JobRunSchema, e.value);
      if (!r.ok) bad(r.why, `A run record of job ${name}`);
      else if (r.data.id !== parts[2]) bad(`its id is ${r.data.id}`, `A run record of job ${name}`);
      else job.runs.push({ ...r.data, createRevision: e.createRevision });
    } else if (parts.length === 3 && parts[1] === "claims") {
      const r = parseJson(JobClaimSchema, e.value);
      if (!r.ok) bad(r.why, `A claim of job ${name}`);
      else job.claims.push({ ...r.data, slot: parts[2] as string, createRevision: e.createRevision });
    } else {
      bad("no such key in a job's folder", `The key`);
    }
  }
  const out: Job[] = [];
  for (const j of jobs.values()) {
    if (!j.specSeen) problems.push({ job: j.name, key: jobSpecKey(j.name), message: `Job ${j.name} has no spec (${jobSpecKey(j.name)}); it never runs. Delete its keys (\`etcdctl del --prefix ${JOBS_PREFIX}${j.name}/\` on a member).` });
    const runs = j.runs.sort((a, b) => a.slot.localeCompare(b.slot) || a.attempt - b.attempt);
    out.push({ name: j.name, ...(j.spec ? { spec: j.spec, specRevision: j.specRevision as string } : {}), ...(j.cancelled ? { cancelled: j.cancelled } : {}), runs, claims: j.claims });
  }
  return { jobs: out.sort((a, b) => a.name.localeCompare(b.name)), problems };
}
