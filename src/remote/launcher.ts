import { UserError } from "../util/errors.ts";
import { REMOTE_INSTALL_DIR } from "./settings.ts";
import { describeTarget, sshRun, type SshSettings, type SshTarget } from "./ssh.ts";

/** Where `slave` puts the launcher that makes `raptiformica` a command on a member. */
export const LAUNCHER_PATH = "/usr/local/bin/raptiformica";

/** The line that marks a launcher as raptiformica's to rewrite; a file without it is left alone. */
export const LAUNCHER_MARK = "# raptiformica launcher, written by `raptiformica slave`";

/**
 * The launcher's text: it runs the install in `installDir` (its bin/raptiformica finds node on
 * PATH and the cache dir under $HOME, as for every command slave runs there).
 */
export function launcherText(installDir: string = REMOTE_INSTALL_DIR): string {
  return [
    "#!/bin/sh",
    LAUNCHER_MARK,
    `# It runs this machine's raptiformica, installed in ${installDir}. Delete the line above to`,
    "# keep a file of your own here: slave then leaves it alone.",
    `exec ${installDir}/bin/raptiformica "$@"`,
    "",
  ].join("\n");
}

/**
 * On the member: `$1` the install's launcher, `$2` where the command goes, `$3` its text, `$4`
 * the mark. Prints what it did: `on-path` (the login environment already finds the install
 * itself — a machine sharing its host's /usr, such as a netns instance, puts it on PATH
 * instead), `linked` (the file there is, or links to, the install's own), `foreign` (a file
 * without the mark: left alone), or `written` (temp file in the same dir, then rename).
 */
export const LAUNCHER_INSTALL_SCRIPT =
  'set -e; own="$1"; f="$2"; ' +
  'if [ "$(command -v raptiformica 2>/dev/null || true)" = "$own" ]; then echo on-path; exit 0; fi; ' +
  'if [ -e "$f" ] || [ -L "$f" ]; then ' +
  '  if [ "$(readlink -f "$f" 2>/dev/null || true)" = "$(readlink -f "$own")" ]; then echo linked; exit 0; fi; ' +
  '  if ! { [ -f "$f" ] && grep -qxF "$4" "$f"; }; then echo foreign; exit 0; fi; ' +
  "fi; " +
  'mkdir -p "$(dirname "$f")"; t="$f.raptiformica-new.$$"; trap \'rm -f "$t"\' EXIT; ' +
  'printf "%s" "$3" > "$t"; chmod 755 "$t"; mv -f "$t" "$f"; trap - EXIT; echo written';

export type LauncherOutcome = "on-path" | "linked" | "foreign" | "written";

/**
 * Makes `raptiformica` a command on the member `t` (after slave pushed the install there):
 * writes {@link LAUNCHER_PATH} atomically unless root's environment already finds the install's
 * own bin/raptiformica first on PATH, and never over a file there that is not a launcher of
 * ours (`foreign`: the caller says so). Resolves with what it did.
 * @throws UserError naming the host when the launcher cannot be written there.
 */
export async function installLauncher(s: SshSettings, t: SshTarget, installDir: string = REMOTE_INSTALL_DIR): Promise<LauncherOutcome> {
  const out = await sshRun(s, t, ["sh", "-c", LAUNCHER_INSTALL_SCRIPT, "sh", `${installDir}/bin/raptiformica`, LAUNCHER_PATH, launcherText(installDir), LAUNCHER_MARK], { timeoutMs: 60_000 });
  const said = out.stdout.trim();
  if (out.exitCode !== 0 || !["on-path", "linked", "foreign", "written"].includes(said)) {
    throw new UserError(`Could not write ${LAUNCHER_PATH} on ${describeTarget(t)} (exit ${out.exitCode}: ${(out.stderr || out.stdout).trim().split("\n").slice(-3).join(" ")}).`);
  }
  return said as LauncherOutcome;
}
