import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { processStart, sameProcess } from "./process-identity.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - (this.chunks[0] as Buffer).length >= this.limit) this.size -= (this.chunks.shift() as Buffer).length;
  }

  /** The last `limit` bytes as UTF-8 text (a character cut at the start shows as U+FFFD). */
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString("utf8");
  }
}

/** How a job's process ended. */
export interface ProcessEnd {
  /** Its exit code; null when a signal ended it or it never started. */
  readonly exitCode: number | null;
  readonly signal?: string;
  /** Its time ran out: its process group was killed. */
  readonly timedOut: boolean;
  /** It was stopped from outside (`stop`): cancelled, or its claim was lost. */
  readonly stopped: boolean;
  /** Why it could not be started (spawn's error). */
  readonly error?: string;
  /** The last `tailBytes` of its output, stdout and stderr as they came. */
  readonly tail: string;
}

/** A started job process. */
export interface JobProcess {
  /** Ends its process group: SIGTERM, SIGKILL `graceMs` later if it is still there. */
  stop(): void;
  readonly ended: Promise<ProcessEnd>;
}

/** How long a process group gets between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 5000;

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* the group is gone */
  }
}

/**
 * Runs `argv` (no shell: argv[0] found on PATH) as the leader of a new process group, with
 * `env`, stdin closed, cwd `cwd`; its output appended whole to `logFile` (made with its folder,
 * mode 0600) and its last `tailBytes` kept. After `timeoutMs` (when given) or on `stop()`, the
 * whole group is ended (SIGTERM, then SIGKILL after `graceMs`), so children it left behind go too.
 * While it runs, `pidFile` (when given) names it (pid and start, process-identity.ts), so that
 * the next runner on this node ends it if this process dies first (endLeftoverJobs).
 * Throws nothing: a command that cannot start ends with `error` and exit code null.
 */
export function startJobProcess(o: { argv: readonly string[]; env: NodeJS.ProcessEnv; cwd: string; logFile: string; tailBytes: number; timeoutMs?: number; graceMs?: number; pidFile?: string }): JobProcess {
  const tail = new TailBuffer(o.tailBytes);
  let fd: number | undefined;
  try {
    makePrivateDir(dirname(o.logFile));
    fd = openSync(o.logFile, "a", 0o600);
  } catch {
    fd = undefined; // the tail still goes into the run record
  }
  const write = (b: Buffer) => {
    tail.push(b);
    if (fd !== undefined) {
      try {
        writeSync(fd, b);
      } catch {
        /* a full disk must not stop the job */
      }
    }
  };
  const [cmd = "", ...args] = o.argv;
  const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  if (o.pidFile && child.pid !== undefined) {
    const start = processStart(child.pid)?.start;
    try {
      makePrivateDir(dirname(o.pidFile));
      if (start) writeFileSync(o.pidFile, `${JSON.stringify({ pid: child.pid, start })}\n`, { mode: 0o600 });
    } catch {
      /* without it, a leftover of this run is not ended by the next runner */
    }
  }
  child.stdout.on("data", write);
  child.stderr.on("data", write);
  let timedOut = false;
  let stopped = false;
  let killTimer: NodeJS.Timeout | undefined;
  const end = () => {
    killGroup(child.pid, "SIGTERM");
    killTimer ??= setTimeout(() => killGroup(child.pid, "SIGKILL"), o.graceMs ?? KILL_GRACE_MS);
    killTimer.unref?.();
  };
  const timer =
    o.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          end();
        }, o.timeoutMs);
  const ended = new Promise<ProcessEnd>((resolve) => {
    let error: string | undefined;
    child.on("error", (e) => {
      error = e.message;
    });
    // `close`: the process is gone and its pipes are drained (what the tail needs).
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      // Children that kept the group alive after the leader left are ended too.
      if (timedOut || stopped) killGroup(child.pid, "SIGKILL");
      if (fd !== undefined) closeSync(fd);
      if (o.pidFile) rmSync(o.pidFile, { force: true });
      resolve({ exitCode: error !== undefined ? null : code, ...(signal ? { signal } : {}), timedOut, stopped, ...(error !== undefined ? { error } : {}), tail: tail.text() });
    });
  });
  return {
    stop() {
      stopped = true;
      end();
    },
    ended,
  };
}

/**
 * Ends the job process groups a runner of this node left behind when it died without ending
 * them (the agent killed or crashed: its claims went with its lease, so other members may run
 * those jobs now): each pid file in `dir` whose process is still the one recorded
 * (process-identity.ts sameProcess: a reused pid is never hit) has its group killed (SIGKILL);
 * every pid file is removed. Returns the pids ended. Throws nothing.
 */
export function endLeftoverJobs(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".pid"));
  } catch {
    return [];
  }
  const ended: number[] = [];
  for (const n of names) {
    const file = join(dir, n);
    try {
      const { pid, start } = JSON.parse(readFileSync(file, "utf8")) as { pid?: unknown; start?: unknown };
      if (typeof pid === "number" && Number.isInteger(pid) && pid > 1 && typeof start === "string" && sameProcess(start, processStart(pid))) {
        killGroup(pid, "SIGKILL");
        ended.push(pid);
      }
    } catch {
      /* not a pid file of ours: removed below */
    }
    rmSync(file, { force: true });
  }
  return ended;
}
