import { appendFileSync } from "node:fs";
import { join } from "node:path";
import type { Etcd3, Watcher } from "etcd3";
import { nextClaim } from "../../consensus/job-plan.ts";
import { claimRun, finishRun, leaseTimeLeft, ownRecordLease, readJobs, recordLostEnd, releaseClaim, standingClaims } from "../../consensus/job-kv.ts";
import { JOBS_PREFIX, OUTPUT_TAIL_BYTES, SCHEDULE_RUNS_KEPT, SERVICE_RUNS_KEPT, type JobRun, type JobSpec } from "../../consensus/jobs.ts";
import { deadline } from "../../consensus/client.ts";
import { clusterSettings } from "../../consensus/settings.ts";
import { endLeftoverJobs, startJobProcess, type JobProcess, type ProcessEnd } from "../../node/job-process.ts";
import type { AgentCompanion, AgentProcess } from "../../node/run-agent.ts";
import { SharedConfig } from "../../node/shared-config.ts";
import { readStatus } from "../../node/status.ts";
import { fireAgentHook } from "../../node/step-hooks.ts";
import { ClusterUnavailable, errorMessage } from "../../util/errors.ts";

/** Where a run's whole output stays on its member: `<node>/log/jobs/<job>/<run id>.log`. */
export function jobLogFile(logDir: string, job: string, run: string): string {
  return join(logDir, "jobs", job, `${run}.log`);
}

/** A run this member holds: its process, its record as claimed, and its claim's fencing token. */
interface Held {
  readonly job: string;
  readonly run: JobRun;
  readonly fence: string;
  readonly process: JobProcess;
  /** Stopped because its claim is gone or could not be confirmed: its end is recorded as lost (recordLostEnd). */
  lost: boolean;
  /** The claim's lease (the node record's), decimal id. */
  readonly lease: string;
  /** That lease's TTL (`meshnet/etcd/node_ttl`; as granted once the cluster said), ms. */
  ttlMs: number;
  /**
   * When the lease's last keep-alive landed, as the latest confirmation says (ms since the
   * epoch): the send time of a read that found the claim standing, less the TTL the lease had
   * used up then. At first: the claim's write less a keep-alive period (a third of the TTL).
   */
  keptAliveAt: number;
}

/** What a runner may be told besides the agent's process (tests shorten the waits). */
export interface RunnerOptions {
  /** The first wait before connecting or passing again after a failure, ms (doubled up to 30 s). */
  readonly retryMs?: number;
  /** Gathers watched changes that come together into one pass, ms. */
  readonly settleMs?: number;
  /** How often the claims of the runs held here are read back while any is held, ms (default 1000). */
  readonly confirmMs?: number;
}

/**
 * Whether a run whose claim's lease was last known kept alive at `keptAliveAt` must be ended at
 * `now` (ms since the epoch): once that is longer ago than the lease's TTL, the lease may have
 * expired on the cluster's side, and another member may hold the slot with a newer fence. Pure.
 */
export function claimOverdue(keptAliveAt: number, ttlMs: number, now: number): boolean {
  return now - keptAliveAt > ttlMs;
}

/**
 * The job runner beside a member's agent (an AgentCompanion): one watch on raptiformica/jobs/
 * (nothing is read or polled while no job changes); on each change one pass reads the jobs and
 * claims what this member may run (consensus/job-plan.ts nextClaim), with a put-if-absent
 * transaction on the claim key attached to the member's node record lease; runs the command
 * without a shell (node/job-process.ts) with RAPTIFORMICA_JOB_NAME / _RUN / _FENCE in its
 * environment, its whole output in `<node>/log/jobs/<job>/<run>.log` and the last
 * OUTPUT_TAIL_BYTES in the run record; records the end only while the claim stands (finishRun).
 * A run whose job is cancelled, or whose claim is gone (its lease expired), has its process
 * group ended. While runs are held, their claims and the lease's time to live are read every
 * `confirmMs` (and only then: without runs nothing is read); a run whose lease no read has
 * shown kept alive for longer than its TTL (node_ttl) is ended too — its member may be cut off from the cluster, whose
 * side then lets the lease expire and has another member run the slot — with a line saying why
 * appended to its log; its end is recorded as lost (`lost`, recordLostEnd) once the KV answers
 * again, never over a newer run's record. A service (`restart: always`) whose run ended is claimed again, by whichever
 * member is first, after its restart delay (job-plan.ts restartDelayMs; a timer only while one
 * waits). A scheduled job (`--every` / `--at`) is claimed by slot, the slot naming its due time,
 * so one due run is claimed once cluster-wide whichever runners see it; a timer waits for the
 * next due time. The `job_start` and `job_end` hooks fire on this member with the run record
 * as payload (`{hook, time, job, run}`; job_end adds `recorded`: whether its end went into the
 * KV, false when its claim was gone). Passes are retried with a backoff only while something could not be done (the KV did
 * not answer, this member has no record yet). Throws nothing, now or later.
 */
export function startJobRunner(p: AgentProcess, o: RunnerOptions = {}): AgentCompanion {
  const { log, node } = p;
  const retryFirst = o.retryMs ?? 1000;
  const settleMs = o.settleMs ?? 100;
  const confirmMs = o.confirmMs ?? 1000;
  const held = new Map<string, Held>();
  let shared: SharedConfig | undefined;
  let client: Etcd3 | undefined;
  let watcher: Watcher | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let backoff = retryFirst;
  let passing: Promise<void> | undefined;
  let again = false;
  let lastProblem = "";
  /** Lost runs whose end is not in the KV yet (it did not answer): written by the next pass. */
  const unrecorded: { job: string; run: JobRun & { fence: string; lost: true } }[] = [];

  // job_start / job_end handlers run one at a time, in the order of the events, off the
  // runner's passes (a slow handler delays no claim).
  let hooks: Promise<unknown> = Promise.resolve();
  const fireJobHook = (hook: "job_start" | "job_end", job: string, run: JobRun, extra: Record<string, unknown> = {}) => {
    hooks = hooks.then(() =>
      fireAgentHook(
        hook,
        { job, run, ...extra },
        {
          mapping: async () => {
            await connect();
            return (await (shared as SharedConfig).snapshot()).mapping;
          },
          installDir: p.installDir,
          cacheDir: p.cache.root,
          log,
        },
      ),
    );
  };

  const problem = (msg: string) => {
    if (msg !== lastProblem) log.warn(msg);
    lastProblem = msg;
  };

  const disconnect = () => {
    void watcher?.cancel().catch(() => undefined);
    watcher = undefined;
    shared?.close();
    shared = undefined;
    client = undefined;
  };

  const later = () => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      schedule(0);
    }, backoff);
    timer.unref?.();
    // A lost run's end waiting for the KV is written soon after it answers again.
    backoff = Math.min(backoff * 2, unrecorded.length > 0 ? 4000 : 30_000);
  };

  let wakeTimer: NodeJS.Timeout | undefined;
  let wakeDue = Infinity;
  /** A pass in `ms` (the earliest asked for wins). */
  const wake = (ms: number) => {
    const due = Date.now() + ms;
    if (wakeTimer && wakeDue <= due) return;
    if (wakeTimer) clearTimeout(wakeTimer);
    wakeDue = due;
    wakeTimer = setTimeout(() => {
      wakeTimer = undefined;
      wakeDue = Infinity;
      schedule(0);
    }, Math.max(0, ms) + 10);
    wakeTimer.unref?.();
  };

  const connect = async (): Promise<Etcd3> => {
    if (client && watcher) return client;
    disconnect();
    shared = await SharedConfig.open(p.local, node, log, { quiet: true });
    if (!shared.client) throw new ClusterUnavailable("no member's etcd answers on 127.0.0.1 or over the mesh");
    const kv = shared.client;
    const w = await deadline("etcd watch of the jobs", 3000, kv.watch().prefix(JOBS_PREFIX).create());
    w.on("put", () => schedule(settleMs));
    w.on("delete", () => schedule(settleMs));
    // After a reconnect, events may have been missed: read again.
    w.on("connected", () => schedule(settleMs));
    w.on("error", (e) => {
      if (watcher !== w) return;
      log.debug(`job watch: ${errorMessage(e)}; watching again`);
      disconnect();
      later();
    });
    client = kv;
    watcher = w;
    return kv;
  };

  const record = async (h: Held, end: ProcessEnd) => {
    const run: JobRun & { fence: string } = {
      ...h.run,
      fence: h.fence,
      endedAt: Date.now(),
      exitCode: end.exitCode,
      ...(end.signal ? { signal: end.signal } : {}),
      ...(end.timedOut ? { timedOut: true } : {}),
      ...(end.stopped && !end.timedOut && !h.lost ? { cancelled: true } : {}),
      ...(end.error !== undefined ? { error: end.error.slice(0, 1024) } : {}),
      outputTail: end.tail,
    };
    // The claim lives as long as the member's lease: a KV that does not answer for a moment
    // is waited out a few times, then the run is left to show as lost.
    for (let i = 0; i < 5 && !stopped; i++) {
      try {
        const kv = await connect();
        const ok = await finishRun(kv, h.job, run);
        if (!ok) log.warn(`job ${h.job} run ${h.run.id}: its claim (fence ${h.fence}) is gone, so its end was not recorded; another member may run it again`);
        fireJobHook("job_end", h.job, run, { recorded: ok });
        return;
      } catch (e) {
        log.debug(`job ${h.job} run ${h.run.id}: recording its end: ${errorMessage(e)}`);
        await new Promise((r) => setTimeout(r, 1000 * (i + 1)));
      }
    }
  };

  /** Writes the ends of lost runs (recordLostEnd) while the KV answers; throws its error when it does not. */
  const recordLost = async (kv: Etcd3) => {
    while (unrecorded.length > 0) {
      const u = unrecorded[0] as (typeof unrecorded)[number];
      const r = await recordLostEnd(kv, u.job, u.run);
      log.info(`job ${u.job} run ${u.run.id}: ${r === "gone" ? "its record had changed or gone, so its end as lost was not written" : "its end is recorded as lost (fencing)"}`);
      unrecorded.shift();
    }
  };

  /** Ends `h` because its claim is gone (seen in a read) or could not be confirmed for its TTL. */
  const endLost = (h: Held, why: string) => {
    if (h.lost) return;
    h.lost = true;
    log.warn(`job ${h.job} run ${h.run.id}: ${why}; ending it`);
    try {
      appendFileSync(jobLogFile(node.logDir, h.job, h.run.id), `\nraptiformica: run ${h.run.id} ended by its runner: ${why}.\n`);
    } catch {
      /* the agent's log says it too */
    }
    h.process.stop();
  };

  let confirmTimer: NodeJS.Timeout | undefined;
  let confirming = false;
  /**
   * Reads back the claims of the runs held here and their leases' time to live: a claim found
   * standing with its fence has its lease's last keep-alive moved to what the read says (its
   * send time less the TTL used up), which is never later than the truth.
   */
  const confirmClaims = async () => {
    const hs = [...held.values()].filter((h) => !h.lost);
    const kv = client;
    if (hs.length === 0 || !kv) return;
    const sent = Date.now();
    const ms = Math.max(500, Math.min(2000, confirmMs * 2));
    try {
      const leases = [...new Set(hs.map((h) => h.lease))];
      const [standing, left] = await Promise.all([standingClaims(kv, hs.map((h) => ({ name: h.job, slot: h.run.slot })), ms), Promise.all(leases.map(async (l) => [l, await leaseTimeLeft(kv, l, ms)] as const))]);
      const ttl = new Map(left);
      let gone = false;
      for (const h of hs) {
        const t = ttl.get(h.lease);
        if (standing.get(`${h.job}/${h.run.slot}`) !== h.fence || !t || t.leftMs <= 0) {
          gone = true;
          continue;
        }
        if (t.grantedMs > 0) h.ttlMs = t.grantedMs;
        h.keptAliveAt = Math.max(h.keptAliveAt, sent + t.leftMs - h.ttlMs);
      }
      // A claim seen gone: the pass ends its run (and tells it from a newer claim of this member).
      if (gone) schedule(0);
    } catch (e) {
      log.debug(`job claims could not be confirmed: ${errorMessage(e)}`);
    }
  };
  /** While runs are held: end those whose claims are overdue (claimOverdue), and read the claims again. */
  const confirmTick = () => {
    if (stopped || held.size === 0) {
      if (confirmTimer) clearInterval(confirmTimer);
      confirmTimer = undefined;
      return;
    }
    const now = Date.now();
    for (const h of held.values()) {
      if (!h.lost && claimOverdue(h.keptAliveAt, h.ttlMs, now)) {
        endLost(h, `its claim (fence ${h.fence}) could not be confirmed: its lease was last known kept alive ${((now - h.keptAliveAt) / 1000).toFixed(1)} s ago, longer than its TTL (${h.ttlMs / 1000} s, meshnet/etcd/node_ttl); this member may be cut off from the cluster, which then lets the claim expire and has another member run it`);
      }
    }
    if (confirming) return;
    confirming = true;
    void confirmClaims().finally(() => {
      confirming = false;
    });
  };
  const keepConfirming = () => {
    if (stopped || confirmTimer) return;
    confirmTimer = setInterval(confirmTick, confirmMs);
    confirmTimer.unref?.();
  };

  const start = (name: string, spec: JobSpec, run: JobRun, fence: string, lease: string, claimSent: number) => {
    const proc = startJobProcess({
      argv: spec.argv,
      env: { ...process.env, RAPTIFORMICA_JOB_NAME: name, RAPTIFORMICA_JOB_RUN: run.id, RAPTIFORMICA_JOB_FENCE: fence },
      cwd: node.root,
      logFile: jobLogFile(node.logDir, name, run.id),
      pidFile: join(node.runDir, "jobs", `${name}.${run.id}.pid`),
      tailBytes: OUTPUT_TAIL_BYTES,
      ...(spec.timeoutSeconds !== undefined ? { timeoutMs: spec.timeoutSeconds * 1000 } : {}),
    });
    const ttlMs = clusterSettings(p.local.snapshot().mapping).nodeTtlSeconds * 1000;
    // The lease was alive when the claim was written on it; its last keep-alive at most a keep-alive period (a third of the TTL) before.
    const h: Held = { job: name, run, fence, process: proc, lost: false, lease, ttlMs, keptAliveAt: claimSent - ttlMs / 3 };
    const key = `${name}/${run.slot}`;
    held.set(key, h);
    log.info(`job ${name}: started run ${run.id} (fence ${fence})`);
    fireJobHook("job_start", name, run);
    keepConfirming();
    void proc.ended.then(async (end) => {
      log.info(`job ${name}: run ${run.id} ended (${end.timedOut ? "timed out" : end.error ? end.error : end.signal ? `signal ${end.signal}` : `exit ${end.exitCode}`})`);
      if (!h.lost && !stopped) await record(h, end);
      else {
        const lostRun = { ...run, fence, endedAt: Date.now(), exitCode: end.exitCode, ...(end.signal ? { signal: end.signal } : {}), outputTail: end.tail, lost: true as const };
        if (h.lost && !stopped) unrecorded.push({ job: name, run: lostRun });
        fireJobHook("job_end", name, lostRun, { recorded: false });
      }
      held.delete(key);
      schedule(settleMs);
    });
  };

  const pass = async () => {
    const self = readStatus(node.status)?.publicKey;
    if (!self) return later();
    const kv = await connect();
    const { jobs, revision } = await readJobs(kv);
    // The runs held here: end those whose job was cancelled or whose claim is gone (only
    // those claimed before this read: a newer claim is not in it yet).
    for (const h of held.values()) {
      if (BigInt(h.fence) > BigInt(revision)) continue;
      const job = jobs.find((j) => j.name === h.job);
      const claim = job?.claims.find((c) => c.slot === h.run.slot);
      if (!claim || claim.createRevision !== h.fence) endLost(h, `its claim (fence ${h.fence}) is gone (this member's lease expired?)`);
      else if (job?.cancelled) h.process.stop();
    }
    await recordLost(kv);
    let blocked = false;
    let own: { lease: string; name: string } | undefined;
    const now = Date.now();
    let wakeAt: number | undefined;
    for (const job of jobs) {
      const next = nextClaim(job, self, now);
      if (!next || !job.spec || !job.specRevision || held.has(`${job.name}/${next.slot}`)) continue;
      if (next.notBefore > now) {
        // A service waiting out its restart delay, or a scheduled job its next due time: look
        // again then (the only timers while no job changes).
        wakeAt = Math.min(wakeAt ?? Infinity, next.notBefore);
        continue;
      }
      own ??= await ownRecordLease(kv, self);
      if (!own) {
        blocked = true; // no node record yet: the agent is still registering
        break;
      }
      const run: JobRun = { v: 1, id: `${next.slot}-${next.attempt}`, slot: next.slot, attempt: next.attempt, member: own.name, publicKey: self, startedAt: Date.now() };
      const dropRun = job.spec.restart && next.attempt > SERVICE_RUNS_KEPT ? `${next.slot}-${next.attempt - SERVICE_RUNS_KEPT}` : job.spec.schedule && job.runs.length >= SCHEDULE_RUNS_KEPT ? job.runs[0]?.id : undefined;
      const claimSent = Date.now();
      const fence = await claimRun(kv, job.name, job.specRevision, run, { v: 1, run: run.id, publicKey: self, member: own.name }, own.lease, dropRun ? { dropRun } : {});
      if (fence) start(job.name, job.spec, { ...run, fence }, fence, own.lease, claimSent);
    }
    lastProblem = "";
    if (wakeAt !== undefined) wake(wakeAt - now);
    if (blocked) later();
    else backoff = retryFirst;
  };

  const schedule = (delayMs: number) => {
    if (stopped) return;
    if (passing) {
      again = true;
      return;
    }
    passing = (async () => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      do {
        again = false;
        try {
          await pass();
        } catch (e) {
          problem(`the job runner could not read or claim jobs (${errorMessage(e)}); trying again`);
          disconnect();
          later();
          break;
        }
      } while (again && !stopped);
    })();
    void passing.finally(() => {
      passing = undefined;
      if (again) schedule(settleMs);
    });
  };

  // Runs a previous agent process of this node left running (killed, crashed) lost their
  // claims with its lease: end them before anything is claimed again.
  const leftovers = endLeftoverJobs(join(node.runDir, "jobs"));
  if (leftovers.length > 0) log.warn(`ended ${leftovers.length} job process group(s) a previous agent left running (pids ${leftovers.join(", ")}): their claims went with its lease`);
  schedule(0);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (wakeTimer) clearTimeout(wakeTimer);
      if (confirmTimer) clearInterval(confirmTimer);
      const all = [...held.values()];
      for (const h of all) h.process.stop();
      // The agent is going: give the slots back (the runs show as lost and run again) rather
      // than record an end the command did not choose.
      await Promise.all(
        all.map(async (h) => {
          await h.process.ended;
          if (client) await releaseClaim(client, h.job, h.run.slot, h.fence).catch(() => undefined);
        }),
      ).catch(() => undefined);
      await passing?.catch(() => undefined);
      await hooks.catch(() => undefined);
      disconnect();
    },
  };
}
