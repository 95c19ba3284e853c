import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import type { Etcd3 } from "etcd3";
import type { FlatMapping } from "../../config/flatten.ts";
import { dueTime, jobSlots, jobState, nextDueTime, runOutcome, scheduleSlot, slotView } from "../../consensus/job-plan.ts";
import { cancelJob, checkFence, readJobs, removeJob, submitJob } from "../../consensus/job-kv.ts";
import { JOBS_PREFIX, JOB_NAME, MAX_EVERY_SECONDS, MAX_RETRIES, MIN_EVERY_SECONDS, MAX_TIMEOUT_SECONDS, JobSpecSchema, memberSlot, parsePlacement, placementText, type Job, type JobProblem, type JobSchedule, type JobSpec } from "../../consensus/jobs.ts";
import { memberLabels, placementMembers } from "../../consensus/labels.ts";
import { readNodeRecords, type NodeRecord } from "../../consensus/registry.ts";
import { readKvMapping } from "../../consensus/kv-config.ts";
import { EXIT_KEY_NOT_SET, UserError } from "../../util/errors.ts";
import { parseDuration, parseTimeOfRun } from "../../util/duration.ts";
import type { FenceAnswer, JobAnswer, JobRow, JobSubmitted, JobsAnswer } from "../cluster/job-wire.ts";

/** What `job run` asks for, checked (checkJobRequest) before anything is sent or stored. */
export interface JobRequest {
  readonly name: string;
  readonly on: string;
  readonly retries: number;
  readonly timeoutSeconds?: number;
  /** A service: one instance kept running (consensus/jobs.ts JobSpec `restart`). */
  readonly restart?: "always";
  /** `--every`: seconds between due times. */
  readonly every?: number;
  /** `--at`: the first (with `every`) or only due time, ms since the epoch, a whole second. */
  readonly at?: number;
  readonly argv: readonly string[];
}

/**
 * A name for a job submitted without `--name`: the command's base name (what of it a name may
 * hold) and 8 random hex digits, e.g. `backup.sh-3fa9c0d1`. Pure but for the randomness.
 */
export function defaultJobName(argv: readonly string[]): string {
  const base = basename(argv[0] ?? "job")
    .replace(/[^A-Za-z0-9_.-]/g, "")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 40);
  return `${base || "job"}-${randomBytes(4).toString("hex")}`;
}

/**
 * `job run`'s options as a request: the name (or a made one), the placement, retries and
 * timeout checked as the KV format wants them.
 * @throws UserError saying which option is wrong and what it takes.
 */
export function checkJobRequest(o: { name?: string; on?: string; retries?: string; timeout?: string; restart?: string; every?: string; at?: string; argv: readonly string[] }, now = Date.now()): JobRequest {
  if (o.argv.length === 0) throw new UserError("`job run` needs the command to run after `--`, e.g. `raptiformica job run --on all -- uptime`.");
  const name = o.name ?? defaultJobName(o.argv);
  if (!JOB_NAME.test(name)) throw new UserError(`"${name}" cannot be a job name: use letters, digits and _.- (up to 64, starting with a letter or digit).`);
  const on = o.on ?? "one";
  const placement = parsePlacement(on);
  if (!placement.ok) throw new UserError(`--on: ${placement.problem}.`);
  const retries = o.retries === undefined ? 0 : Number(o.retries);
  if (!/^[0-9]+$/.test(o.retries ?? "0") || retries > MAX_RETRIES) throw new UserError(`--retries "${o.retries}" is not a whole number from 0 to ${MAX_RETRIES}.`);
  let timeoutSeconds: number | undefined;
  if (o.timeout !== undefined) {
    const d = parseDuration(o.timeout);
    if (!d.ok) throw new UserError(`--timeout: ${d.problem}.`);
    if (d.seconds > MAX_TIMEOUT_SECONDS) throw new UserError(`--timeout ${o.timeout} is longer than 30 days.`);
    timeoutSeconds = d.seconds;
  }
  if (o.restart !== undefined && o.restart !== "always") throw new UserError(`--restart "${o.restart}": the one policy is \`always\` (a service kept running on one member).`);
  if (o.restart && placement.placement.kind === "all") throw new UserError("--restart always keeps one instance running: use --on one or --on LABEL=VALUE (one of the members with that label), not --on all.");
  if (o.restart && retries > 0) throw new UserError("--retries does not apply to --restart always: a service is started again however it ends.");
  let every: number | undefined;
  if (o.every !== undefined) {
    const d = parseDuration(o.every);
    if (!d.ok) throw new UserError(`--every: ${d.problem}.`);
    if (!Number.isInteger(d.seconds) || d.seconds < MIN_EVERY_SECONDS || d.seconds > MAX_EVERY_SECONDS) throw new UserError(`--every ${o.every} must be whole seconds from ${MIN_EVERY_SECONDS} s to 366 days.`);
    every = d.seconds;
  }
  let at: number | undefined;
  if (o.at !== undefined) {
    const t = parseTimeOfRun(o.at, now);
    if (!t.ok) throw new UserError(`--at: ${t.problem}.`);
    // A one-off time already gone would never run; with --every a past --at only sets the phase.
    if (every === undefined && t.ms < now - 60_000) throw new UserError(`--at ${o.at} has passed; give a time to come (or add --every to repeat from it).`);
    at = t.ms;
  }
  if ((every !== undefined || at !== undefined) && (o.restart || placement.placement.kind !== "one")) {
    throw new UserError("--every and --at schedule runs of `--on one` jobs (each due run on one member); they do not go with --on all, --on LABEL=VALUE or --restart always.");
  }
  return {
    name,
    on: placementText(placement.placement),
    retries,
    ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    ...(o.restart ? { restart: "always" as const } : {}),
    ...(every !== undefined ? { every } : {}),
    ...(at !== undefined ? { at } : {}),
    argv: [...o.argv],
  };
}

/** The argv of `job run` that submits `r` through a member (what it parses back with checkJobRequest). */
export function jobRunArgv(r: JobRequest): string[] {
  return ["job", "run", "--json", "--name", r.name, "--on", r.on, "--retries", String(r.retries), ...(r.timeoutSeconds !== undefined ? ["--timeout", String(r.timeoutSeconds)] : []), ...(r.restart ? ["--restart", r.restart] : []), ...(r.every !== undefined ? ["--every", String(r.every)] : []), ...(r.at !== undefined ? ["--at", new Date(r.at).toISOString()] : []), "--", ...r.argv];
}

/**
 * The spec `r` is stored as: for `all` / `LABEL=VALUE`, the alive members (their `records`) it
 * places it on, by the labels `mapping` gives them.
 * @throws UserError when no alive member matches the placement (naming the labels they have).
 */
export function specFor(r: JobRequest, records: readonly NodeRecord[], mapping: FlatMapping, now = Date.now()): JobSpec {
  const placement = parsePlacement(r.on);
  if (!placement.ok) throw new UserError(`--on: ${placement.problem}.`);
  const members = placementMembers(placement.placement, records, mapping);
  if (members !== undefined && members.length === 0) {
    const seen = records.map((rec) => `${rec.name} (${Object.entries(memberLabels(rec, mapping)).map(([k, v]) => `${k}=${v}`).join(", ")})`);
    throw new UserError(
      `No alive member matches --on ${r.on}, so job ${r.name} was not stored. The alive members and their labels: ${seen.join("; ") || "none"}. ` +
        "Labels come from each member (arch, distribution, role) and from the config (raptiformica/labels/<member name>/<label>).",
    );
  }
  // Without --at, the first due time is now (to the second): an `--every` job runs at once.
  const schedule = r.every !== undefined || r.at !== undefined ? { first: r.at ?? Math.ceil(now / 1000) * 1000, ...(r.every !== undefined ? { every: r.every } : {}) } : undefined;
  return JobSpecSchema.parse({ v: 1, name: r.name, argv: r.argv, on: r.on, retries: r.retries, ...(r.timeoutSeconds !== undefined ? { timeoutSeconds: r.timeoutSeconds } : {}), ...(r.restart ? { restart: r.restart } : {}), ...(schedule ? { schedule } : {}), createdAt: now, ...(members ? { members } : {}) });
}

/**
 * `job run` on a member: stores the job (placed on the alive members for `all` / `LABEL=VALUE`).
 * @throws UserError when the placement matches no alive member or the name is taken.
 * @throws DeadlineExceeded (a ClusterUnavailable) when the KV does not answer.
 */
export async function submitLocal(client: Etcd3, r: JobRequest): Promise<JobSubmitted> {
  const [records, mapping] = await Promise.all([readNodeRecords(client, 3000), readKvMapping(client, 3000)]);
  const spec = specFor(r, records, mapping);
  if (!(await submitJob(client, spec))) {
    throw new UserError(`A job named ${r.name} is already in the cluster (raptiformica/jobs/${r.name}/); nothing was stored. Choose another --name, or see it with \`raptiformica job show ${r.name}\`.`);
  }
  const names = new Map(records.map((rec) => [rec.publicKey, rec.name]));
  return {
    name: spec.name,
    on: spec.on,
    argv: spec.argv,
    retries: spec.retries,
    ...(spec.timeoutSeconds !== undefined ? { timeoutSeconds: spec.timeoutSeconds } : {}),
    ...(spec.restart ? { restart: spec.restart } : {}),
    ...(spec.schedule ? { schedule: spec.schedule } : {}),
    ...(spec.members ? { members: spec.members.map((k) => ({ name: names.get(k) ?? memberSlot(k), publicKey: k })) } : {}),
  };
}

/** A job as one line of `job ls`. Pure; throws nothing. */
export function jobRow(job: Job): JobRow {
  const outcomes = job.runs.map((r) => runOutcome(r, job.claims));
  return {
    name: job.name,
    state: jobState(job),
    ...(job.spec ? { on: job.spec.on, argv: job.spec.argv, createdAt: job.spec.createdAt } : {}),
    runs: job.runs.length,
    running: outcomes.filter((o) => o === "running").length,
    succeeded: outcomes.filter((o) => o === "succeeded").length,
    failed: outcomes.filter((o) => o === "failed").length,
  };
}

/** `job ls` on a member. @throws DeadlineExceeded when the KV does not answer. */
export async function listLocal(client: Etcd3): Promise<JobsAnswer> {
  const { jobs, problems } = await readJobs(client);
  return { jobs: jobs.map(jobRow), problems };
}

function noSuchJob(name: string): UserError {
  return new UserError(`No job named ${name} in the cluster (raptiformica/jobs/${name}/spec). \`raptiformica job ls\` lists the jobs.`, EXIT_KEY_NOT_SET);
}

/** When a scheduled job runs next: its next due time, or its latest one while that still waits for a member. */
function nextDue(schedule: JobSchedule, job: Job, now = Date.now()): { nextDueAt?: number } {
  if (job.cancelled) return {};
  const due = dueTime(schedule, now);
  if (due !== undefined && slotView(job, scheduleSlot(due)).state === "pending") return { nextDueAt: due };
  const next = nextDueTime(schedule, now);
  return next === undefined ? {} : { nextDueAt: next };
}

/**
 * A job with each of its slots and runs, as `job show` gives it (member names from the live
 * records, else the runs', else the short key). Pure; throws nothing.
 */
export function jobView(job: Job, problems: readonly JobProblem[], records: readonly NodeRecord[]): JobAnswer {
  const names = new Map(records.map((r) => [memberSlot(r.publicKey), r.name]));
  for (const r of job.runs) if (!names.has(r.slot)) names.set(r.slot, r.member);
  const spec = job.spec;
  return {
    name: job.name,
    state: jobState(job),
    ...(spec ? { on: spec.on, argv: spec.argv, retries: spec.retries, createdAt: spec.createdAt, ...(spec.timeoutSeconds !== undefined ? { timeoutSeconds: spec.timeoutSeconds } : {}), ...(spec.restart ? { restart: spec.restart } : {}) } : {}),
    ...(spec?.schedule ? { schedule: spec.schedule, ...nextDue(spec.schedule, job) } : {}),
    ...(job.cancelled ? { cancelledAt: job.cancelled.at } : {}),
    slots: jobSlots(job).map((slot) => {
      const member = spec?.members && !spec.restart ? names.get(slot) : undefined;
      return { slot, ...(member ? { member } : {}), state: slotView(job, slot).state };
    }),
    runs: job.runs.map((r) => ({
      id: r.id,
      slot: r.slot,
      attempt: r.attempt,
      member: r.member,
      publicKey: r.publicKey,
      outcome: runOutcome(r, job.claims),
      startedAt: r.startedAt,
      ...(r.endedAt !== undefined ? { endedAt: r.endedAt } : {}),
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
      ...(r.timedOut ? { timedOut: true } : {}),
      ...(r.error !== undefined ? { error: r.error } : {}),
      fence: r.fence ?? r.createRevision,
      ...(r.outputTail !== undefined ? { outputTail: r.outputTail } : {}),
    })),
    problems: problems.filter((p) => p.job === job.name),
  };
}

/**
 * `job show NAME` on a member.
 * @throws UserError (exit 66) when no job of that name is in the KV.
 * @throws DeadlineExceeded when the KV does not answer.
 */
export async function showLocal(client: Etcd3, name: string): Promise<JobAnswer> {
  const [{ jobs, problems }, records] = await Promise.all([readJobs(client), readNodeRecords(client, 3000)]);
  const job = jobs.find((j) => j.name === name);
  if (!job) throw noSuchJob(name);
  return jobView(job, problems, records);
}

/**
 * `job cancel NAME` on a member: marks it cancelled (its running processes are ended by their
 * runners). Returns false when it already was.
 * @throws UserError (exit 66) when no job of that name is in the KV.
 * @throws DeadlineExceeded when the KV does not answer.
 */
export async function cancelLocal(client: Etcd3, name: string): Promise<boolean> {
  const r = await cancelJob(client, name);
  if (r === "absent") throw noSuchJob(name);
  return r === "cancelled";
}

/**
 * `job fence-check NAME FENCE` on a member: whether FENCE (a run's RAPTIFORMICA_JOB_FENCE) is
 * still the fencing token of a standing claim of the job (consensus/job-kv.ts checkFence).
 * @throws UserError (exit 66) when no job of that name is in the KV.
 * @throws DeadlineExceeded when the KV does not answer.
 */
export async function fenceCheckLocal(client: Etcd3, name: string, fence: string): Promise<FenceAnswer> {
  const r = await checkFence(client, name, fence);
  if (!r.exists) throw noSuchJob(name);
  return { name, fence, valid: r.valid, current: r.current };
}

/**
 * Why job `job` may not be removed yet, or undefined when it may: nothing of it runs (no claim
 * stands) and nothing more of it can start — it is cancelled, or done (succeeded or failed,
 * and not scheduled nor a service). Pure; throws nothing.
 */
export function removalRefusal(job: Job): string | undefined {
  if (job.claims.length > 0) return `job ${job.name} has a run going (${job.claims.map((c) => `${c.run} on ${c.member}`).join(", ")}): \`raptiformica job cancel ${job.name}\` first, then remove it once it shows cancelled`;
  if (job.cancelled || !job.spec) return undefined;
  const state = jobState(job);
  if (state === "succeeded" || state === "failed") return undefined;
  return `job ${job.name} is ${state}: more of it may still start. \`raptiformica job cancel ${job.name}\` first`;
}

/**
 * `job rm NAME` on a member: removes a finished or cancelled job with its runs (removeJob).
 * @throws UserError (exit 66) when there is no such job; UserError saying what to do while it
 * runs or may still start, or when it changed while being removed.
 * @throws DeadlineExceeded when the KV does not answer.
 */
export async function removeLocal(client: Etcd3, name: string): Promise<{ runs: number }> {
  const { jobs } = await readJobs(client);
  const job = jobs.find((j) => j.name === name);
  if (!job) throw noSuchJob(name);
  const why = removalRefusal(job);
  if (why) throw new UserError(`Not removed: ${why}.`);
  if (!job.specRevision) throw new UserError(`Job ${name} has no usable spec; remove its keys with \`etcdctl del --prefix ${JOBS_PREFIX}${name}/\` on a member.`);
  if (!(await removeJob(client, name, job.specRevision, job.cancelled !== undefined))) throw new UserError(`Job ${name} changed while it was being removed; nothing was removed. Look again with \`raptiformica job show ${name}\`.`);
  return { runs: job.runs.length };
}
