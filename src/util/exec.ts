import { execa } from "execa";

export interface ShellOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then stdin is closed. */
  input?: string;
  timeoutMs: number;
  /** Stream the child's stdout/stderr to ours instead of capturing them. */
  live?: boolean;
}

export interface ShellOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the process could not be started at all (cwd missing, no sh …). */
  failedToStart?: string;
}

/**
 * Runs a command that is shell *by contract* (module predicates, hook and compute commands)
 * with `sh -c`. Nothing built from data ever goes through here: the command string comes from
 * a module or the config the operator controls.
 */
export async function runShell(command: string, opts: ShellOptions): Promise<ShellOutcome> {
  const result = await execa("sh", ["-c", command], {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: opts.env === undefined,
    input: opts.input ?? "",
    timeout: opts.timeoutMs,
    killSignal: "SIGKILL",
    reject: false,
    stdout: opts.live ? "inherit" : "pipe",
    stderr: opts.live ? "inherit" : "pipe",
    stripFinalNewline: false,
  });
  const startFailure = result.exitCode === undefined && !result.timedOut ? startFailureOf(result) : undefined;
  return {
    exitCode: result.exitCode ?? (result.timedOut ? 124 : 127),
    stdout: typeof result.stdout === "string" ? result.stdout : "",
    stderr: typeof result.stderr === "string" ? result.stderr : "",
    timedOut: result.timedOut,
    ...(startFailure ? { failedToStart: startFailure } : {}),
  };
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: string;
}

/** Runs a program with an argv array (no shell) and captures its output. */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<ShellOutcome> {
  const result = await execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    input: opts.input ?? "",
    timeout: opts.timeoutMs,
    killSignal: "SIGKILL",
    reject: false,
  });
  const startFailure = result.exitCode === undefined && !result.timedOut ? startFailureOf(result) : undefined;
  return {
    exitCode: result.exitCode ?? (result.timedOut ? 124 : 127),
    stdout: result.stdout,
    stderr: result.stderr,
    timedOut: result.timedOut,
    ...(startFailure ? { failedToStart: startFailure } : {}),
  };
}

function startFailureOf(result: object): string {
  const r = result as { shortMessage?: string; message?: string };
  return r.shortMessage ?? r.message ?? "could not start the process";
}
