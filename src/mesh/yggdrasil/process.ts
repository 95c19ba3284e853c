import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, closeSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { makePrivateDir } from "../../util/private-dir.ts";

export interface StartOptions {
  binary: string;
  configFile: string;
  /** yggdrasil's log and anything it writes to stderr (a Go panic) are appended here. */
  logFile: string;
  /** argv placed in front of the binary, e.g. ["ip", "netns", "exec", "ns1"]. */
  prefix?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** The argv that starts yggdrasil for `configFile` (after `prefix`). */
export function yggdrasilArgv(opts: Pick<StartOptions, "binary" | "configFile" | "prefix">): string[] {
  return [...(opts.prefix ?? []), opts.binary, "-useconffile", opts.configFile, "-logto", "stdout"];
}

/**
 * Starts yggdrasil as a child process and returns it; restarting it is the supervisor's job.
 * It logs to stdout, which goes to `logFile` together with stderr, so a crash's panic ends up
 * next to the log lines that led to it.
 */
export function startYggdrasil(opts: StartOptions): ChildProcess {
  makePrivateDir(dirname(opts.logFile));
  const fd = openSync(opts.logFile, "a", 0o600);
  let child: ChildProcess;
  try {
    const [file, ...args] = yggdrasilArgv(opts);
    child = spawn(file!, args, { stdio: ["ignore", fd, fd], env: opts.env ?? process.env });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  // A binary that cannot be started emits "error" (then "close", never "exit"); unhandled, that
  // would take the whole agent down. Record it where the operator looks for yggdrasil's problems.
  child.on("error", (e) => {
    try {
      appendFileSync(opts.logFile, `raptiformica: could not start ${opts.binary}: ${e.message}\n`);
    } catch {
      // The log is best effort; the caller sees the child's exit code either way.
    }
  });
  return child;
}

/**
 * Stops a child started by startYggdrasil: SIGTERM (yggdrasil then removes its admin socket and
 * TUN interface), SIGKILL if it is still there after `timeoutMs`. Resolves once it has exited.
 */
export function stopYggdrasil(child: ChildProcess, timeoutMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolvePromise();
    });
    child.kill("SIGTERM");
  });
}
