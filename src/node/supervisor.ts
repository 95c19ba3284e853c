import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setPriority } from "node:os";
import { waitUntil } from "../util/wait.ts";
import { processStart, sameProcess } from "./process-identity.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/** A long-running child the agent keeps alive. */
export interface ServiceSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Changes to this value mean "restart with the new settings". */
  readonly configHash: string;
  /** Facts about the running instance, kept with its pid (e.g. what it was started with). */
  readonly meta?: Record<string, unknown>;
  /** Scheduling priority (nice value; below 0 needs root — otherwise it stays at the default). */
  readonly priority?: number;
}

interface PidRecord {
  pid: number;
  hash: string;
  command: string;
  startedAt: number;
  /** Which process this is: `<boot id>/<start time in clock ticks since boot>` (see processStart). */
  processStart?: string;
  meta?: Record<string, unknown>;
}

export type EnsureOutcome = "running" | "started" | "restarted";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return undefined;
  }
}

/**
 * Keeps services running across agent restarts: each child is started detached with a pidfile,
 * so a restarted agent adopts what still runs (no needless mesh or consensus disruption) and
 * restarts only what died or whose config changed. Liveness is checked on every agent tick. A
 * pid counts as the service only while it is the very process that was started (its start time
 * is kept in the pidfile): a pid handed out again is neither adopted nor signalled, and a
 * service that execs another program is still recognised.
 */
export class Supervisor {
  constructor(
    private readonly runDir: string,
    private readonly logDir: string,
  ) {
    makePrivateDir(runDir);
    makePrivateDir(logDir);
  }

  private pidFile(name: string): string {
    return join(this.runDir, `${name}.pid`);
  }

  logFile(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  private record(name: string): PidRecord | undefined {
    try {
      const r = JSON.parse(readFileSync(this.pidFile(name), "utf8")) as PidRecord;
      if (!Number.isInteger(r.pid)) return undefined;
      if (!alive(r.pid)) return undefined;
      // A reused pid is not our service: the process must be the one started (same start time,
      // same boot), and not a zombie waiting to be reaped. Pidfiles written before start times
      // were kept: the command line must still name the command.
      if (r.processStart !== undefined) {
        return sameProcess(r.processStart, processStart(r.pid)) ? r : undefined;
      }
      const cmd = cmdlineOf(r.pid);
      return cmd !== undefined && cmd.includes(r.command) ? r : undefined;
    } catch {
      return undefined;
    }
  }

  isRunning(name: string): boolean {
    return this.record(name) !== undefined;
  }

  pid(name: string): number | undefined {
    return this.record(name)?.pid;
  }

  metaOf(name: string): Record<string, unknown> | undefined {
    return this.record(name)?.meta;
  }

  /**
   * Whether the running service's program file was replaced since it started: a package
   * upgrade unlinks the old file, and /proc/<pid>/exe then names it with " (deleted)". False
   * when the service does not run or /proc cannot tell.
   */
  programReplaced(name: string): boolean {
    const pid = this.record(name)?.pid;
    if (pid === undefined) return false;
    try {
      return readlinkSync(`/proc/${pid}/exe`).endsWith(" (deleted)");
    } catch {
      return false;
    }
  }

  hashOf(name: string): string | undefined {
    return this.record(name)?.hash;
  }

  startedAt(name: string): number | undefined {
    return this.record(name)?.startedAt;
  }

  /** Starts the service, or restarts it when its config hash changed or `restart` asks to. */
  async ensure(spec: ServiceSpec, opts: { restart?: boolean } = {}): Promise<EnsureOutcome> {
    const current = this.record(spec.name);
    if (current && current.hash === spec.configHash && !opts.restart) return "running";
    if (current) await this.stop(spec.name);
    this.start(spec);
    return current ? "restarted" : "started";
  }

  private start(spec: ServiceSpec): void {
    const log = openSync(this.logFile(spec.name), "a", 0o600);
    try {
      const child = spawn(spec.command, spec.args, {
        detached: true,
        stdio: ["ignore", log, log],
        env: spec.env ?? process.env,
      });
      child.on("error", () => undefined);
      child.unref();
      if (child.pid === undefined) throw new Error(`could not start ${spec.command}`);
      if (spec.priority !== undefined) {
        try {
          setPriority(child.pid, spec.priority);
        } catch {
          /* not root: the default priority */
        }
      }
      const started = processStart(child.pid)?.start;
      const rec: PidRecord = {
        pid: child.pid,
        hash: spec.configHash,
        command: spec.command,
        startedAt: Date.now(),
        ...(started ? { processStart: started } : {}),
        ...(spec.meta ? { meta: spec.meta } : {}),
      };
      writeFileSync(this.pidFile(spec.name), JSON.stringify(rec), { mode: 0o600 });
    } finally {
      closeSync(log);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; bounded wait. */
  async stop(name: string, graceMs = 5000): Promise<void> {
    const rec = this.record(name);
    rmSync(this.pidFile(name), { force: true });
    if (!rec) return;
    try {
      process.kill(rec.pid, "SIGTERM");
    } catch {
      return;
    }
    await waitUntil(() => !alive(rec.pid), { timeoutMs: graceMs, intervalMs: 50 });
    if (alive(rec.pid)) {
      try {
        process.kill(rec.pid, "SIGKILL");
      } catch {
        /* gone */
      }
      await waitUntil(() => !alive(rec.pid), { timeoutMs: 2000, intervalMs: 20 });
    }
  }
}
