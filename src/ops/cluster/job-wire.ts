import { z } from "zod";
import type { ClusterId } from "../../consensus/cluster-id.ts";

/*
 * What a member's CLI prints for `job run --json`, `job ls --json` and `job show --json`, which
 * an operator machine runs on it over SSH (cluster/via-member.ts): declared once, like the other
 * answers (cluster/wire.ts). Unknown fields are dropped, not refused.
 */

const clusterId = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .transform((s) => s as ClusterId)
  .optional();

/** A job as submitted: what `job run` stored (consensus/jobs.ts JobSpec), with the names of the members it placed it on. */
export const jobSubmitted = z.object({
  clusterId,
  name: z.string(),
  on: z.string(),
  argv: z.array(z.string()),
  retries: z.number(),
  timeoutSeconds: z.number().optional(),
  /** `always`: a service (one instance kept running). */
  restart: z.literal("always").optional(),
  /** `--every` / `--at`: the first due time (ms since the epoch) and the seconds between them. */
  schedule: z.object({ first: z.number(), every: z.number().optional() }).optional(),
  /** `all` / `LABEL=VALUE`: the members it runs on (name and key); absent for `one`. */
  members: z.array(z.object({ name: z.string(), publicKey: z.string() })).optional(),
});
export type JobSubmitted = z.infer<typeof jobSubmitted>;

const jobState = z.enum(["pending", "scheduled", "running", "succeeded", "failed", "cancelled", "bad spec"]);

/** One line of `job ls`. */
export const jobRow = z.object({
  name: z.string(),
  state: jobState,
  /** Absent for a job whose spec is bad. */
  on: z.string().optional(),
  argv: z.array(z.string()).optional(),
  createdAt: z.number().optional(),
  runs: z.number(),
  running: z.number(),
  succeeded: z.number(),
  failed: z.number(),
});
export type JobRow = z.infer<typeof jobRow>;

/** An entry under raptiformica/jobs/ that could not be used (consensus/jobs.ts JobProblem). */
export const jobProblem = z.object({ job: z.string(), key: z.string(), message: z.string() });
export type JobProblemRow = z.infer<typeof jobProblem>;

/** `raptiformica job ls --json`. */
export const jobsAnswer = z.object({ clusterId, jobs: z.array(jobRow), problems: z.array(jobProblem) });
export type JobsAnswer = z.infer<typeof jobsAnswer>;

/** One run of `job show`: outcome as consensus/job-plan.ts runOutcome says. */
export const runView = z.object({
  id: z.string(),
  slot: z.string(),
  attempt: z.number(),
  member: z.string(),
  publicKey: z.string(),
  outcome: z.enum(["running", "lost", "succeeded", "failed", "cancelled"]),
  startedAt: z.number(),
  endedAt: z.number().optional(),
  exitCode: z.number().nullable().optional(),
  signal: z.string().optional(),
  timedOut: z.boolean().optional(),
  error: z.string().optional(),
  /** The claim's revision the run was given as RAPTIFORMICA_JOB_FENCE. */
  fence: z.string(),
  outputTail: z.string().optional(),
});
export type RunView = z.infer<typeof runView>;

/** A slot of a job (`one`, or a member's) and its state. */
export const slotRow = z.object({ slot: z.string(), member: z.string().optional(), state: z.enum(["pending", "running", "succeeded", "failed", "cancelled"]) });
export type SlotRow = z.infer<typeof slotRow>;

/** `raptiformica job show NAME --json`. */
export const jobAnswer = z.object({
  clusterId,
  name: z.string(),
  state: jobState,
  on: z.string().optional(),
  argv: z.array(z.string()).optional(),
  retries: z.number().optional(),
  timeoutSeconds: z.number().optional(),
  restart: z.literal("always").optional(),
  schedule: z.object({ first: z.number(), every: z.number().optional() }).optional(),
  /** A scheduled job's next due time (or its latest while no member has claimed it yet), ms since the epoch. */
  nextDueAt: z.number().optional(),
  createdAt: z.number().optional(),
  cancelledAt: z.number().optional(),
  slots: z.array(slotRow),
  runs: z.array(runView),
  problems: z.array(jobProblem),
});
export type JobAnswer = z.infer<typeof jobAnswer>;

/** `raptiformica job fence-check NAME FENCE --json`: whether FENCE is a standing claim's, and the standing claims' fences. */
export const fenceAnswer = z.object({ clusterId, name: z.string(), fence: z.string(), valid: z.boolean(), current: z.array(z.string()) });
export type FenceAnswer = z.infer<typeof fenceAnswer>;
