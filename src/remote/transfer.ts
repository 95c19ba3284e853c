import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { CACHE_MARKER, MANAGED_MARKER } from "../config/paths.ts";
import { run, type Outcome } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { shellQuote } from "./quote.ts";
import { describeTarget, sshArgv, sshFailure, sshOptions, sshRun, type SshSettings, type SshTarget } from "./ssh.ts";

/**
 * Copies local directories and files onto a target: rsync when both ends have it (only what
 * changed crosses the wire), else a tar stream over ssh. Either way each copied entry ends up
 * an exact copy (files gone locally are removed there too), and a failed copy leaves the
 * previous contents in place: the tar path unpacks beside them and swaps entry by entry.
 *
 * What a push may replace is confined: only the listed entries inside `to`, and only when `to`
 * is raptiformica's (it carries {@link MANAGED_MARKER}, or is new or empty, or shows one of
 * `legacyMarks` — an install made before the marker existed — and then gets the marker).
 * Anything else is refused before a byte is copied. Pushed files are owned by root:root and
 * not writable by group or others on the target, whoever owns them here.
 */
export interface PushRequest {
  /** Local directory the entries are relative to. */
  readonly from: string;
  /** Names inside `from` to copy (files or directories). */
  readonly entries: readonly string[];
  /** Remote directory (absolute, or relative to the remote home). */
  readonly to: string;
  readonly exclude?: readonly string[];
  /** Paths relative to `to` whose presence shows an install from before the marker existed. */
  readonly legacyMarks?: readonly string[];
}

/**
 * The file that marks a remote directory as raptiformica's to replace. A remote cache dir
 * (`slave` pushes modules into it) may carry the cache dir's own marker instead.
 */
export { MANAGED_MARKER };

let localRsync: Promise<boolean> | undefined;
function haveLocalRsync(): Promise<boolean> {
  localRsync ??= run("rsync", ["--version"], { timeoutMs: 5000 }).then((o) => o.exitCode === 0);
  return localRsync;
}

function userHost(t: SshTarget): string {
  const host = t.host.includes(":") ? `[${t.host}]` : t.host;
  return `${t.user ?? "root"}@${host}`;
}

/**
 * On the target: is `$1` raptiformica's to replace (its marker, or the cache dir's)? Exit 0 (marking it when new, empty or a
 * legacy install named by one of the further arguments), exit 3 with a reason when it is not.
 */
const GUARD =
  'd="$1"; shift; m="$d/' + MANAGED_MARKER + '"; [ -e "$m" ] && exit 0; [ -f "$d/' + CACHE_MARKER + '" ] && exit 0; ' +
  'if [ -e "$d" ] && [ ! -d "$d" ]; then echo "it exists and is not a directory"; exit 3; fi; ' +
  'if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then ok=; for x in "$@"; do [ -e "$d/$x" ] && ok=1; done; ' +
  '[ -n "$ok" ] || { echo "it holds files raptiformica did not put there (no $m)"; exit 3; }; fi; ' +
  'mkdir -p "$d" && echo "raptiformica replaces the entries it copies into this directory (slave)." > "$m"';

/**
 * Pushes `req.entries` of `req.from` into `req.to` on `t` (see {@link PushRequest}). Throws a
 * UserError naming the host and directory when `to` is not raptiformica's (nothing copied),
 * or when the copy fails (the previous contents stay).
 */
export async function pushTree(s: SshSettings, t: SshTarget, req: PushRequest, remoteHasRsync: boolean): Promise<void> {
  const entries = req.entries.filter((e) => existsSync(`${req.from}/${e}`));
  if (entries.length === 0) return;
  const guard = await sshRun(s, t, ["sh", "-c", GUARD, "sh", req.to, ...(req.legacyMarks ?? [])], { timeoutMs: 60_000 });
  if (guard.exitCode !== 0) {
    const why = guard.stdout.trim() || lastLines(guard.stderr);
    throw new UserError(
      `Refusing to copy into ${req.to} on ${describeTarget(t)}: ${why}. raptiformica replaces only directories it made (marked with ${MANAGED_MARKER}); nothing was changed there. ` +
        `Move that directory away on ${describeTarget(t)} (or, if it really is raptiformica's, create ${req.to}/${MANAGED_MARKER}) and run this again.`,
    );
  }
  if (remoteHasRsync && (await haveLocalRsync())) {
    // rsync splits -e on spaces itself, honouring quotes: each ssh option is quoted.
    const rsh = ["ssh", ...sshOptions(s, t)].map(shellQuote).join(" ");
    const owner = (t.user ?? "root") === "root" ? ["--chown=0:0"] : ["--no-owner", "--no-group"];
    const args = [
      "-a", "--delete", "--relative", ...owner, "--chmod=go-w", "--filter", `P /${MANAGED_MARKER}`,
      ...(req.exclude ?? []).flatMap((x) => ["--exclude", x]), "-e", rsh,
    ];
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

/**
 * Unpacks into `<to>/.raptiformica-new`, then swaps each entry in: an interrupted copy never
 * leaves a half entry, and nothing in `to` but the copied entries is touched.
 */
const UNPACK =
  'set -e; d="$1"; shift; n="$d/.raptiformica-new"; o="$d/.raptiformica-old"; rm -rf "$n" "$o"; mkdir -p "$n"; ' +
  'tar --no-same-owner -xzf - -C "$n"; ' +
  'for e in "$@"; do if [ -e "$d/$e" ] || [ -L "$d/$e" ]; then mv "$d/$e" "$o"; fi; mv "$n/$e" "$d/$e"; rm -rf "$o"; done; rm -rf "$n"';

async function pushTar(s: SshSettings, t: SshTarget, req: PushRequest): Promise<void> {
  const tarArgs = [
    "-C", req.from, "-czf", "-", "--owner=0", "--group=0", "--numeric-owner", "--mode=go-w",
    ...(req.exclude ?? []).map((x) => `--exclude=${x}`), "--", ...req.entries,
  ];
  const out = await pipe(["tar", tarArgs], ["ssh", sshArgv(s, t, ["sh", "-c", UNPACK, "sh", req.to, ...req.entries])], 600_000);
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
