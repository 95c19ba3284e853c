import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { run, type Outcome } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { shellQuote } from "./quote.ts";
import { describeTarget, sshArgv, sshFailure, sshOptions, sshRun, type SshSettings, type SshTarget } from "./ssh.ts";

/**
 * Copies local directories and files onto a target: rsync when both ends have it (only what
 * changed crosses the wire), else a tar stream over ssh. Either way the destination directory
 * ends up an exact copy (files gone locally are removed there too), and a failed copy leaves
 * the previous contents in place: the tar path unpacks beside it and swaps at the end.
 */
export interface PushRequest {
  /** Local directory the entries are relative to. */
  readonly from: string;
  /** Names inside `from` to copy (files or directories). */
  readonly entries: readonly string[];
  /** Remote directory (absolute, or relative to the remote home). */
  readonly to: string;
  readonly exclude?: readonly string[];
}

let localRsync: Promise<boolean> | undefined;
function haveLocalRsync(): Promise<boolean> {
  localRsync ??= run("rsync", ["--version"], { timeoutMs: 5000 }).then((o) => o.exitCode === 0);
  return localRsync;
}

function userHost(t: SshTarget): string {
  const host = t.host.includes(":") ? `[${t.host}]` : t.host;
  return `${t.user ?? "root"}@${host}`;
}

export async function pushTree(s: SshSettings, t: SshTarget, req: PushRequest, remoteHasRsync: boolean): Promise<void> {
  const entries = req.entries.filter((e) => existsSync(`${req.from}/${e}`));
  if (entries.length === 0) return;
  const made = await sshRun(s, t, ["mkdir", "-p", req.to], { timeoutMs: 60_000 });
  if (made.exitCode !== 0) throw new UserError(`Cannot create ${req.to} on ${describeTarget(t)}: ${made.stderr.trim()}`);
  if (remoteHasRsync && (await haveLocalRsync())) {
    // rsync splits -e on spaces itself, honouring quotes: each ssh option is quoted.
    const rsh = ["ssh", ...sshOptions(s, t)].map(shellQuote).join(" ");
    const args = ["-a", "--delete", "--relative", ...(req.exclude ?? []).flatMap((x) => ["--exclude", x]), "-e", rsh];
    const sources = entries.map((e) => `${req.from}/./${e}`);
    const out = await run("rsync", [...args, ...sources, `${userHost(t)}:${req.to.replace(/\/?$/, "/")}`], { timeoutMs: 600_000 });
    if (out.exitCode !== 0) {
      const failure = sshFailure(t, s, out);
      throw new UserError(failure ?? `Copying ${entries.join(", ")} to ${describeTarget(t)}:${req.to} with rsync failed: ${lastLines(out.stderr)}`);
    }
    return;
  }
  await pushTar(s, t, { ...req, entries });
}

/** Unpacks into `<to>.new`, then swaps it in: an interrupted copy never leaves a half tree. */
const UNPACK = 'set -e; d="$1"; rm -rf "$d.new" "$d.old"; mkdir -p "$d.new"; tar -xzf - -C "$d.new"; if [ -e "$d" ]; then mv "$d" "$d.old"; fi; mv "$d.new" "$d"; rm -rf "$d.old"';

async function pushTar(s: SshSettings, t: SshTarget, req: PushRequest): Promise<void> {
  const tarArgs = ["-C", req.from, "-czf", "-", ...(req.exclude ?? []).map((x) => `--exclude=${x}`), "--", ...req.entries];
  const out = await pipe(["tar", tarArgs], ["ssh", sshArgv(s, t, ["sh", "-c", UNPACK, "sh", req.to])], 600_000);
  if (out.exitCode !== 0) {
    const failure = sshFailure(t, s, out);
    throw new UserError(failure ?? `Copying ${req.entries.join(", ")} to ${describeTarget(t)}:${req.to} over ssh failed: ${lastLines(out.stderr)}`);
  }
}

/** Writes `content` to a remote file atomically (temp file + rename), mode 0600. */
export async function pushFile(s: SshSettings, t: SshTarget, path: string, content: string, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
  const script =
    'set -e; f="$1"; if [ "$2" = keep ] && [ -e "$f" ]; then cat >/dev/null; echo kept; exit 0; fi; umask 077; mkdir -p "$(dirname "$f")"; cat > "$f.tmp"; mv "$f.tmp" "$f"; echo written';
  const out = await sshRun(s, t, ["sh", "-c", script, "sh", path, opts.onlyIfAbsent ? "keep" : "replace"], { input: content, timeoutMs: 60_000 });
  if (out.exitCode !== 0) throw new UserError(`Cannot write ${path} on ${describeTarget(t)}: ${lastLines(out.stderr)}`);
  return out.stdout.trim() === "written";
}

function lastLines(text: string, n = 3): string {
  return text.trim().split("\n").slice(-n).join(" | ") || "no error output";
}

/** `a | b`, with b's exit code (or a's, when a failed and b did not) and both stderrs. */
function pipe(a: [string, string[]], b: [string, string[]], timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const left = spawn(a[0], a[1], { stdio: ["ignore", "pipe", "pipe"] });
    const right = spawn(b[0], b[1], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    left.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    right.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    right.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    left.stdout.pipe(right.stdin);
    right.stdin.on("error", () => undefined);
    let leftCode: number | null = null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      left.kill("SIGKILL");
      right.kill("SIGKILL");
    }, timeoutMs);
    left.on("close", (code) => (leftCode = code));
    left.on("error", (e) => (stderr += `${a[0]}: ${e.message}\n`));
    right.on("error", (e) => (stderr += `${b[0]}: ${e.message}\n`));
    right.on("close", (code) => {
      clearTimeout(timer);
      const rc = code ?? 124;
      resolve({ exitCode: rc === 0 && leftCode ? leftCode : rc, stdout, stderr, timedOut });
    });
  });
}
