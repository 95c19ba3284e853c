import { run } from "../../util/exec.ts";
import { err, ok, type Result } from "../../util/result.ts";

/**
 * The two Yggdrasil generations we support. They use different wire protocols (0.4 and 0.5
 * nodes cannot peer), different config fields and different admin replies, so almost every
 * other module here takes the major as a parameter.
 */
export type Major = "0.4" | "0.5";

/** The yggdrasil binary to run: RAPTIFORMICA_YGGDRASIL (tests point it at 0.5), else PATH's. */
export function yggdrasilBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env["RAPTIFORMICA_YGGDRASIL"] || "yggdrasil";
}

export interface YggdrasilInfo {
  /** The binary as given (a name looked up on PATH, or a path). */
  binary: string;
  major: Major;
  /** e.g. "0.5.12"; "0.4.x" / "0.5.x" when the build does not know its version (Debian's 0.4). */
  version: string;
}

const DETECT_TIMEOUT_MS = 10_000;

/**
 * The major of a Yggdrasil build from what `yggdrasil -h` prints (pure): 0.5 added `-publickey`
 * and `-exportkey`. The usage must be Yggdrasil's (it lists `-useconffile`); undefined otherwise.
 * The rule modules/server/headless/bootstrap.sh applies in shell, and `migrate-mesh` on a member.
 */
export function majorFromUsage(usage: string): Major | undefined {
  if (!/-useconffile\b/.test(usage)) return undefined;
  return /-publickey\b/.test(usage) && /-exportkey\b/.test(usage) ? "0.5" : "0.4";
}

/**
 * Works out which Yggdrasil `binary` is. The flags decide the major: 0.5 added `-publickey` and
 * `-exportkey`, and Debian's 0.4 build prints "Build version: unknown", so `-version` alone
 * cannot be trusted. A version number, when the build has one, must agree with the flags.
 */
export async function detectYggdrasil(binary = "yggdrasil"): Promise<Result<YggdrasilInfo, string>> {
  const help = await run(binary, ["-h"], { timeoutMs: DETECT_TIMEOUT_MS });
  if (help.failedToStart !== undefined) {
    return err(
      `cannot run ${binary} (${help.failedToStart}): install Yggdrasil (Debian/Ubuntu: apt-get install yggdrasil) or give the path to its binary.`,
    );
  }
  const usage = `${help.stdout}\n${help.stderr}`;
  const flagMajor = help.timedOut ? undefined : majorFromUsage(usage);
  if (flagMajor === undefined) {
    return err(`${binary} does not look like Yggdrasil: \`${binary} -h\` did not list -useconffile.`);
  }

  const ver = await run(binary, ["-version"], { timeoutMs: DETECT_TIMEOUT_MS });
  const m = /Build version:\s*v?(\d+)\.(\d+)(\.\d+)?\S*/.exec(`${ver.stdout}\n${ver.stderr}`);
  if (!m) return ok({ binary, major: flagMajor, version: `${flagMajor}.x` });

  const numbered = `${m[1]}.${m[2]}`;
  const version = `${numbered}${m[3] ?? ""}`;
  if (numbered !== "0.4" && numbered !== "0.5") {
    return err(`${binary} is Yggdrasil ${version}; raptiformica supports the 0.4 and 0.5 series only.`);
  }
  if (numbered !== flagMajor) {
    return err(
      `${binary} says it is Yggdrasil ${version} but its flags are those of ${flagMajor}; reinstall Yggdrasil so the binary is one consistent release.`,
    );
  }
  return ok({ binary, major: numbered, version });
}

/**
 * Every member must run the same major: a 0.4 node and a 0.5 node never peer, so a mixed cluster
 * silently splits in two. Returns the shared major, or a message naming the odd ones out.
 */
export function assertSameMajor(local: Major, others: readonly { node: string; major: Major }[]): Result<Major, string> {
  const odd = others.filter((o) => o.major !== local);
  if (odd.length === 0) return ok(local);
  const other: Major = local === "0.4" ? "0.5" : "0.4";
  const names = odd.map((o) => o.node).join(", ");
  return err(
    `This machine runs Yggdrasil ${local} but ${odd.length === 1 ? "member" : "members"} ${names} ${odd.length === 1 ? "runs" : "run"} ${other}. ` +
      `Yggdrasil 0.4 and 0.5 cannot peer with each other, so the mesh would split. ` +
      `Upgrade or downgrade Yggdrasil so that all members run one major version (either all 0.4 or all 0.5), then try again.`,
  );
}
