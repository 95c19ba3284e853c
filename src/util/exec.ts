import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";

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
  /** Set when the process could not be started at all (missing program or cwd). */
  failedToStart?: string;
}

/**
 * Runs a program with an argv array (never through a shell). The child gets its own process
 * group so a timeout kills everything it started, not just the direct child.
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<Outcome> {
  return new Promise((resolvePromise) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["pipe", opts.live ? "inherit" : "pipe", opts.live ? "inherit" : "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolvePromise(outcome);
    };
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
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
    child.on("error", (e) => finish({ exitCode: 127, stdout, stderr, timedOut: false, failedToStart: e.message }));
    child.on("close", (code, signal) => {
      finish({ exitCode: code ?? (timedOut ? 124 : 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)), stdout, stderr, timedOut });
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
