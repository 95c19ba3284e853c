import type { FlatMapping } from "../../config/flatten.ts";
import type { Context } from "../context.ts";
import type { NeighbourRegistration } from "../inject.ts";
import { memberTargets } from "../via-member.ts";
import { LocalCluster } from "./local.ts";
import { isMember } from "./member.ts";
import { ViaMember, sshMembers } from "./via-member.ts";
import type { LinksAnswer, MembersAnswer } from "./wire.ts";
import type { FenceAnswer, JobAnswer, JobSubmitted, JobsAnswer } from "./job-wire.ts";
import type { JobRequest } from "../job/jobs.ts";

/**
 * The cluster as a command sees it, wherever it runs: on a member through the KV
 * (LocalCluster), on an operator machine through the first member that answers over SSH
 * (ViaMember). Both give the same answers in the same types (cluster/wire.ts); errors are
 * UserErrors naming the member or key, or ClusterUnavailable when the KV does not answer in time.
 */
export interface Cluster {
  /** `here`: this machine's KV (or, knowing no member, its own config); `member`: over SSH. */
  readonly where: "here" | "member";
  /** The members and the cluster's problems; `quorum` false when only a cache could answer. */
  members(): Promise<MembersAnswer>;
  /** Every member's link report merged into links (ops/links.ts); `quorum` false when only a cache could answer. */
  links(): Promise<LinksAnswer>;
  /** The whole shared config. */
  readConfig(): Promise<FlatMapping>;
  /** Sets one key, refused (UserError) when it cannot be held or breaks the cluster's settings. */
  setConfig(key: string, value: string): Promise<void>;
  /** Deletes a key, or with `recursive` every key below it too; KeyNotSet (exit 66) when nothing is set. */
  deleteConfig(key: string, opts?: { recursive?: boolean }): Promise<void>;
  /**
   * Registers a machine as a neighbour (see ops/inject.ts); `inCluster` false: only a local
   * config took it. `config`: the shared config afterwards (what a new machine is given), when
   * it could be read.
   */
  inject(r: NeighbourRegistration): Promise<{ inCluster: boolean; config?: FlatMapping }>;
  /** Removes the neighbour entries of these public keys; keys not there are skipped. */
  forgetNeighbours(publicKeys: readonly string[]): Promise<void>;
  /** Stores a job (ops/job/jobs.ts submitLocal); refused (UserError) when its name is taken or no member matches. */
  jobRun(r: JobRequest): Promise<JobSubmitted>;
  /** Every job, and the entries under raptiformica/jobs/ that cannot be used. */
  jobList(): Promise<JobsAnswer>;
  /** One job with its runs; UserError (exit 66) when there is none of that name. */
  jobShow(name: string): Promise<JobAnswer>;
  /** Marks a job cancelled: true when now, false when it already was; UserError (exit 66) when there is none. */
  jobCancel(name: string): Promise<boolean>;
  /** Whether a run's fencing token is still a standing claim's; UserError (exit 66) when there is no such job. */
  jobFenceCheck(name: string, fence: string): Promise<FenceAnswer>;
  /** Removes a finished or cancelled job and its runs; UserError while it runs or may start, exit 66 when there is none. */
  jobRemove(name: string): Promise<{ runs: number }>;
  /**
   * Writes the log of a run of job `name` (`run`, else the latest) to `out` (ops/job/logs.ts
   * jobLogsLocal); `follow`: until the run ends. Through a member: what it prints, once.
   */
  jobLogs(name: string, o: { run?: string; follow?: boolean }, out: (b: Buffer | string) => void, note: (s: string) => void): Promise<void>;
}

/**
 * The cluster for a command on this machine: a member's own KV; else the members this machine's
 * config names (`mapping`, default its own copy), over SSH; else, knowing none, this machine's
 * own config (reads and writes go there; `members` refuses with what to do).
 * Throws nothing: each call of the Cluster says what it throws.
 */
export function clusterFor(ctx: Context, mapping: FlatMapping = ctx.config.snapshot().mapping): Cluster {
  if (isMember(ctx) || memberTargets(mapping).length === 0) return new LocalCluster(ctx);
  return new ViaMember(sshMembers(ctx, mapping));
}

export { isMember };
