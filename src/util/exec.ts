import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";

export interface RunOptions {
  cwd?: string;
  /** The child's whole environment (default: ours). */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then stdin is closed. A child that never reads it is fine. */
  input?: string;
  timeoutMs?: number;
  /** Stream the child's stdout/stderr to ours instead of capturing them. */
  live?: boolean;
}

export interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the process could not be started at all (missing program or cwd, E2BIG). */
  failedToStart?: string;
}

/**
 * Where a child's captured output goes: an already-unlinked temporary file, not a pipe. A
 * background job the child leaves behind (`cmd &` in a hook) inherits it and may keep writing
 * there for as long as it likes without anyone waiting for it to close (a pipe would be held
 * open until the job ends) and without being killed by SIGPIPE once we stop reading.
 */
class CaptureFile {
  readonly fd: number = -1;

  constructor() {
    let firstProblem: unknown;
    for (const dir of [...new Set([tmpdir(), "/tmp", "/dev/shm"])]) {
      const path = join(dir, `raptiformica-out-${process.pid}-${randomUUID()}`);
      try {
        this.fd = openSync(path, "wx+", 0o600);
      } catch (e) {
        firstProblem ??= e;
        continue;
      }
      unlinkSync(path);
      return;
    }
    throw new Error(`no temporary directory to capture a command's output in (${(firstProblem as Error).message})`);
  }

  /** What was written so far (from the start, whatever the shared file offset is), then closes the file. */
  take(): string {
    try {
      const size = fstatSync(this.fd).size;
      const buf = Buffer.alloc(size);
      let got = 0;
      while (got < size) {
        const n = readSync(this.fd, buf, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got).toString("utf8");
    } finally {
      this.close();
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

/** Process groups of the children `run` started that have not exited yet. */
const runningGroups = new Set<number>();

/**
 * Sends `signal` to the process group of every child {@link run} started that is still
 * running, and returns how many. Children run in their own process groups (so a timeout can
 * kill all they started), which also means the terminal's Ctrl-C does not reach them: the CLI
 * passes it on with this before it exits. Background jobs a finished child left behind are not
 * signalled (their group's leader has exited and is no longer listed). Throws nothing.
 */
export function signalRunningChildren(signal: NodeJS.Signals): number {
  let n = 0;
  for (const pgid of runningGroups) {
    try {
      process.kill(-pgid, signal);
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}

/**
 * Runs a program with an argv array (never through a shell). The child gets its own process
 * group so a timeout kills everything it started, not just the direct child.
 *
 * The run is over when the child exits: output it left to a background job (`sleep 60 &`)
 * is not waited for, and the job keeps running (a timeout that fired earlier kills it with the
 * group). Captured stdout/stderr hold everything the child wrote before it exited, of any size.
 * A program that cannot be started (missing, or E2BIG: an environment string over 128 KiB)
 * resolves with exit code 127 and `failedToStart`, it does not throw.
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<Outcome> {
  return new Promise((resolvePromise) => {
    let out: CaptureFile | undefined;
    let err: CaptureFile | undefined;
    let child: ReturnType<typeof spawn>;
    try {
      if (!opts.live) {
        out = new CaptureFile();
        err = new CaptureFile();
      }
      child = spawn(file, args, {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ["pipe", out?.fd ?? "inherit", err?.fd ?? "inherit"],
        detached: true,
      });
    } catch (e) {
      // spawn() throws synchronously for some refusals of execve (E2BIG, EACCES on cwd, …).
      out?.close();
      err?.close();
      resolvePromise({ exitCode: 127, stdout: "", stderr: "", timedOut: false, failedToStart: (e as Error).message });
      return;
    }
    let timedOut = false;
    let settled = false;
    const pgid = child.pid;
    if (pgid !== undefined) runningGroups.add(pgid);
    const finish = (outcome: Omit<Outcome, "stdout" | "stderr">) => {
      if (settled) return;
      settled = true;
      if (pgid !== undefined) runningGroups.delete(pgid);
      if (timer) clearTimeout(timer);
      resolvePromise({ ...outcome, stdout: out?.take() ?? "", stderr: err?.take() ?? "" });
    };
    // A child may exit without reading its input (EPIPE): that is not a failure of the child.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.input ?? "");
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            try {
              if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
            } catch {
              child.kill("SIGKILL");
            }
          }, opts.timeoutMs);
    child.on("error", (e) => finish({ exitCode: 127, timedOut: false, failedToStart: e.message }));
    // 'exit', not 'close': 'close' also waits for every process holding the child's stdio, which
    // includes the background jobs it started.
    child.on("exit", (code, signal) => {
      finish({ exitCode: code ?? (timedOut ? 124 : 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)), timedOut });
    });
  });
}

export interface ShellOptions extends RunOptions {
  cwd: string;
  timeoutMs: number;
}

/**
 * Runs a command that is shell *by contract* (module predicates, hook and compute commands)
 * with `sh -c`. Nothing built from data goes through here: the command string comes from a
 * module or config the operator controls.
 */
export function runShell(command: string, opts: ShellOptions): Promise<Outcome> {
  return run("sh", ["-c", command], opts);
}
