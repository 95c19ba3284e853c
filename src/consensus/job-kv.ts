import type { Etcd3 } from "etcd3";
import { deadline } from "./client.ts";
import { JOBS_PREFIX, jobCancelKey, jobClaimKey, jobRunKey, jobSpecKey, parseJobEntries, type Job, type JobClaim, type JobProblem, type JobRun, type JobSpec } from "./jobs.ts";
import { nodeKey } from "./registry.ts";

/*
 * The jobs' reads and writes on etcd's own primitives: one range read of the prefix, and
 * transactions guarded on create and mod revisions (consensus/jobs.ts says what the keys hold).
 */

/**
 * Every job (parseJobEntries) in one range read at one revision, which it returns too.
 * @throws DeadlineExceeded (a ClusterUnavailable) or etcd's error when the KV does not answer within `ms`.
 */
export async function readJobs(client: Etcd3, ms = 3000): Promise<{ jobs: Job[]; problems: JobProblem[]; revision: string }> {
  const res = await deadline("etcd read of the jobs", ms, client.getAll().prefix(JOBS_PREFIX).exec());
  const entries = res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), createRevision: String(kv.create_revision), modRevision: String(kv.mod_revision) }));
  return { ...parseJobEntries(entries), revision: String(res.header.revision) };
}

/**
 * Stores `spec` under its name, only when no key of a job by that name exists (its spec, cancel
 * mark, runs or claims). True when stored, false when the name is taken.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function submitJob(client: Etcd3, spec: JobSpec, ms = 3000): Promise<boolean> {
  const folder = `${JOBS_PREFIX}${spec.name}/`;
  const existing = await deadline("etcd read of the job's keys", ms, client.getAll().prefix(folder).keys());
  if (existing.length > 0) return false;
  const res = await deadline("etcd write of the job's spec", ms, client.if(jobSpecKey(spec.name), "Create", "==", 0).then(client.put(jobSpecKey(spec.name)).value(JSON.stringify(spec))).commit());
  return res.succeeded;
}

/**
 * Marks job `name` cancelled (its runners stop its running processes; nothing more is claimed).
 * "cancelled" when marked now, "already" when it was, "absent" when no spec of that name exists.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function cancelJob(client: Etcd3, name: string, now = Date.now(), ms = 3000): Promise<"cancelled" | "already" | "absent"> {
  const res = await deadline(
    "etcd write of the job's cancel mark",
    ms,
    client
      .if(jobSpecKey(name), "Create", ">", 0)
      .and(jobCancelKey(name), "Create", "==", 0)
      .then(client.put(jobCancelKey(name)).value(JSON.stringify({ v: 1, at: now })))
      .else(client.get(jobSpecKey(name)))
      .commit(),
  );
  if (res.succeeded) return "cancelled";
  const found = res.responses[0]?.response_range?.kvs.length ?? 0;
  return found > 0 ? "already" : "absent";
}

/**
 * The lease of this member's node record (consensus/registry.ts), which its claims are put on so
 * that they vanish with the record, and the member's name as the record gives it; undefined
 * while it has no record.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function ownRecordLease(client: Etcd3, publicKey: string, ms = 3000): Promise<{ lease: string; name: string } | undefined> {
  const res = await deadline("etcd read of this node's record", ms, client.get(nodeKey(publicKey)).exec());
  const kv = res.kvs[0];
  if (!kv || !kv.lease || kv.lease === "0") return undefined;
  let name = publicKey.slice(0, 16);
  try {
    const rec = JSON.parse(kv.value.toString()) as { name?: unknown };
    if (typeof rec.name === "string" && rec.name) name = rec.name;
  } catch {
    /* a record that is not JSON still has its lease */
  }
  return { lease: String(kv.lease), name };
}

/**
 * Gives up the claim made with `fence` on slot `slot` of job `name` without recording an end
 * (the agent is stopping): the run shows as lost, and the slot may be claimed again at once.
 * True when the claim was there to delete.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function releaseClaim(client: Etcd3, name: string, slot: string, fence: string, ms = 2000): Promise<boolean> {
  const key = jobClaimKey(name, slot);
  const res = await deadline("etcd release of a job claim", ms, client.if(key, "Create", "==", Number(fence)).then(client.delete().key(key)).commit());
  return res.succeeded;
}

/**
 * Claims run `run.id` of slot `run.slot` of job `name` for `claim.publicKey`, in one transaction:
 * only while the job's spec is still the one at `specRevision`, it is not cancelled, no claim
 * holds the slot and that run was never started; the claim goes on `lease` (the member's node
 * record's), the run record beside it; `dropRun` (a service's oldest kept run) is deleted in the
 * same transaction. Returns the fencing token (the claim's create revision,
 * a decimal string), or undefined when another member won or the job changed.
 * @throws DeadlineExceeded or etcd's error (a lease that has expired) when the write fails.
 */
export async function claimRun(client: Etcd3, name: string, specRevision: string, run: JobRun, claim: JobClaim, lease: string, opts: { dropRun?: string } = {}, ms = 3000): Promise<string | undefined> {
  const claimKey = jobClaimKey(name, run.slot);
  const runKey = jobRunKey(name, run.id);
  const drop = opts.dropRun === undefined ? [] : [client.delete().key(jobRunKey(name, opts.dropRun))];
  const res = await deadline(
    "etcd claim of a job run",
    ms,
    client
      .if(jobSpecKey(name), "Mod", "==", Number(specRevision))
      .and(jobCancelKey(name), "Create", "==", 0)
      .and(claimKey, "Create", "==", 0)
      .and(runKey, "Create", "==", 0)
      .then(client.put(claimKey).value(JSON.stringify(claim)).lease(lease), client.put(runKey).value(JSON.stringify(run)), ...drop)
      .commit(),
  );
  return res.succeeded ? String(res.header.revision) : undefined;
}

/**
 * Records the end of a run (`run`, with its fence) and frees its slot, only while the claim made
 * with `fence` still stands: a runner whose claim is gone (its lease expired; another member may
 * run the slot now) is refused. True when recorded.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function finishRun(client: Etcd3, name: string, run: JobRun & { fence: string }, ms = 3000): Promise<boolean> {
  const claimKey = jobClaimKey(name, run.slot);
  const res = await deadline(
    "etcd write of a job run's end",
    ms,
    client
      .if(claimKey, "Create", "==", Number(run.fence))
      .then(client.put(jobRunKey(name, run.id)).value(JSON.stringify(run)), client.delete().key(claimKey))
      .commit(),
  );
  return res.succeeded;
}

/**
 * Whether `fence` is the fencing token of a claim that still stands on job `name`: some claim
 * key under `raptiformica/jobs/<name>/claims/` has it as its create revision. The same test the
 * runner puts into the transaction that records a run's end (finishRun); apps that write to etcd
 * can put `create(claim key) == fence` into their own transaction instead. Returns the fences of
 * the standing claims too (empty when none), and whether a spec of that name exists.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function checkFence(client: Etcd3, name: string, fence: string, ms = 3000): Promise<{ valid: boolean; current: string[]; exists: boolean }> {
  const res = await deadline(
    "etcd read of the job's claims",
    ms,
    client
      .if(jobSpecKey(name), "Create", ">", 0)
      .then(client.getAll().prefix(`${JOBS_PREFIX}${name}/claims/`))
      .commit(),
  );
  if (!res.succeeded) return { valid: false, current: [], exists: false };
  const kvs = res.responses[0]?.response_range?.kvs ?? [];
  const current = kvs.map((kv) => String(kv.create_revision));
  return { valid: /^[0-9]{1,20}$/.test(fence) && current.includes(String(BigInt(fence))), current, exists: true };
}

/**
 * Removes job `name` and all its keys (spec, runs, claims, cancel mark) in one transaction that
 * holds only while its spec is still the one at `specRevision`, its cancel mark as `cancelled`
 * says (present or absent) and none of `claimKeys` (the claims read with it) stands again — the
 * caller has checked from that read that nothing of it runs or can still be claimed. True when
 * removed, false when the job changed in between (read again).
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function removeJob(client: Etcd3, name: string, specRevision: string, cancelled: boolean, ms = 3000): Promise<boolean> {
  const res = await deadline(
    "etcd removal of a job",
    ms,
    client
      .if(jobSpecKey(name), "Mod", "==", Number(specRevision))
      .and(jobCancelKey(name), "Create", cancelled ? ">" : "==", 0)
      .then(client.delete().prefix(`${JOBS_PREFIX}${name}/`))
      .commit(),
  );
  return res.succeeded;
}

/**
 * The create revisions (fences) of the claims on `slots` (job name and slot) that stand now, by
 * `name/slot`; an absent claim is not in the map. A linearizable read of each claim key, so an
 * answer means the cluster's quorum saw it: what a runner confirms its runs' claims with while
 * it cannot tell otherwise that its member is still in the cluster.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function standingClaims(client: Etcd3, slots: readonly { name: string; slot: string }[], ms = 2000): Promise<Map<string, string>> {
  const found = await deadline(
    "etcd read of job claims",
    ms,
    Promise.all(slots.map(async (s) => ({ s, kvs: (await client.get(jobClaimKey(s.name, s.slot)).exec()).kvs }))),
  );
  const out = new Map<string, string>();
  for (const { s, kvs } of found) {
    const kv = kvs[0];
    if (kv) out.set(`${s.name}/${s.slot}`, String(kv.create_revision));
  }
  return out;
}

/**
 * Records the end of a run its own runner ended for want of its claim (`run.lost`: the claim
 * was gone, or could not be confirmed for the lease's TTL while the member was cut off). When
 * the claim made with `run.fence` still stands (the KV was only slow), the end is recorded and
 * the claim freed, as finishRun does ("released"); else the end goes into the run record only
 * while that record is still the one written with the claim (its mod revision is the fence):
 * never over an ended record, a removed job, or anything of a newer run ("recorded"). "gone"
 * when neither held.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function recordLostEnd(client: Etcd3, name: string, run: JobRun & { fence: string; lost: true }, ms = 3000): Promise<"released" | "recorded" | "gone"> {
  if (await finishRun(client, name, run, ms)) return "released";
  const runKey = jobRunKey(name, run.id);
  const res = await deadline("etcd write of a lost run's end", ms, client.if(runKey, "Mod", "==", Number(run.fence)).then(client.put(runKey).value(JSON.stringify(run))).commit());
  return res.succeeded ? "recorded" : "gone";
}

/**
 * What the cluster says of lease `lease` (decimal id): its TTL left and as granted, ms (whole
 * seconds as etcd counts them, rounded down: never more than is left); left 0 when it has
 * expired. Asked of the leader (through a grpc-proxy, of its upstream), so an answer means the
 * member still reaches the cluster; the last keep-alive that landed was `grantedMs - leftMs` ago.
 * @throws DeadlineExceeded or etcd's error when the KV does not answer within `ms`.
 */
export async function leaseTimeLeft(client: Etcd3, lease: string, ms = 2000): Promise<{ leftMs: number; grantedMs: number }> {
  const res = await deadline("etcd read of a lease's time to live", ms, client.leaseClient.leaseTimeToLive({ ID: lease, keys: false }));
  return { leftMs: Math.max(0, Number(res.TTL)) * 1000, grantedMs: Math.max(0, Number(res.grantedTTL)) * 1000 };
}
