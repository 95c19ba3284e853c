import type { FlatMapping } from "../../config/flatten.ts";
import type { SshSettings, SshTarget } from "../../remote/ssh.ts";
import { ClusterUnavailable, EXIT_CLUSTER_UNAVAILABLE, EXIT_KEY_NOT_SET, KeyNotSet, UserError } from "../../util/errors.ts";
import type { Outcome } from "../../util/exec.ts";
import { SshNodeChannel, type NodeChannel } from "./node-channel.ts";
import { decodeAnswer, decodeFullConfig, identityAnswer, membersAnswer, type IdentityAnswer, type MembersAnswer } from "./wire.ts";

/**
 * The last lines of a member's stderr, on one line: what an error quotes.
 * Pure; throws nothing.
 */
export function lastLines(text: string, n = 3): string {
  return text.trim().split("\n").slice(-n).join(" | ") || "no error output";
}

/**
 * A member's own message for a command that failed there: its stderr up to and without the
 * last `raptiformica: ` prefix (the member's error paragraph), which this machine's error handler
 * adds again. `before` is what the member printed ahead of it (warnings).
 * Pure; throws nothing.
 */
export function memberError(stderr: string): { before: string; message: string } {
  const at = stderr.lastIndexOf("raptiformica: ");
  const lineStart = at <= 0 || stderr[at - 1] === "\n";
  if (at < 0 || !lineStart) return { before: "", message: stderr.trim() };
  return { before: stderr.slice(0, at), message: stderr.slice(at + "raptiformica: ".length).trim() };
}

/**
 * The error for a command that failed on a member (`out`: its outcome, `command`: its argv):
 * the member's own message (memberError) with its exit code, so the command fails here as it
 * did there. Exit {@link EXIT_KEY_NOT_SET} for a command about config key `key` is a
 * {@link KeyNotSet}: callers tell "not set" by that type, never by the message's words; exit
 * {@link EXIT_CLUSTER_UNAVAILABLE} (the member's etcd did not answer) is a
 * {@link ClusterUnavailable}, which callers may wait out.
 * Pure; throws nothing (it returns the error to throw).
 */
export function memberFailure(out: Pick<Outcome, "exitCode" | "stderr">, command: readonly string[], key?: string): UserError | ClusterUnavailable {
  const message = memberError(out.stderr).message || `\`raptiformica ${command[0] ?? ""}\` exited ${out.exitCode} on a member without saying why`;
  if (out.exitCode === EXIT_CLUSTER_UNAVAILABLE) return new ClusterUnavailable(message);
  return out.exitCode === EXIT_KEY_NOT_SET && key !== undefined ? new KeyNotSet(key, message) : new UserError(message, out.exitCode);
}

/**
 * raptiformica's CLI on one machine, reached through a {@link NodeChannel} (SSH for `slave`
 * and `deploy`; `ip netns exec` in the lab), each call decoded into the
 * types of cluster/wire.ts. Errors are UserErrors naming the machine: unreachable machines
 * (the channel's), non-zero exits quoting its stderr, answers that do not decode.
 */
export class MemberCli {
  constructor(readonly channel: NodeChannel) {}

  /** Over root SSH to `target`, `launcher` being raptiformica's remote command there. */
  static overSsh(settings: SshSettings, target: SshTarget, launcher: string): MemberCli {
    return new MemberCli(new SshNodeChannel(settings, target, launcher));
  }

  get who(): string {
    return this.channel.who;
  }

  /** Runs `raptiformica ARGV` there and returns its outcome, whatever its exit code. */
  run(argv: readonly string[], timeoutMs = 60_000): Promise<Outcome> {
    return this.channel.run(argv, timeoutMs);
  }

  /** Runs `raptiformica ARGV` there; a non-zero exit is a UserError quoting its last lines. */
  async ok(argv: readonly string[], timeoutMs = 120_000): Promise<string> {
    const out = await this.run(argv, timeoutMs);
    if (out.exitCode !== 0) throw new UserError(`\`raptiformica ${argv.join(" ")}\` failed on ${this.who} (exit ${out.exitCode}): ${lastLines(out.stderr)}`);
    return out.stdout;
  }

  /** `identity --json`: its mesh identity (made there once if it has none). */
  async identity(): Promise<IdentityAnswer> {
    const out = await this.run(["identity", "--json"]);
    if (out.exitCode !== 0) {
      throw new UserError(
        `Cannot read the Yggdrasil key of ${this.who} (\`raptiformica identity --json\` there exited ${out.exitCode}: ${out.stderr.trim().split("\n").pop() ?? ""}). ` +
          "Is raptiformica installed there (`raptiformica slave` does that)?",
      );
    }
    return decodeAnswer(identityAnswer, out, this.who, "identity --json");
  }

  /** `members --json`: an answer without quorum (exit 1) is still an answer. */
  async members(timeoutMs = 60_000): Promise<MembersAnswer> {
    return decodeAnswer(membersAnswer, await this.run(["members", "--json"], timeoutMs), this.who, "members --json");
  }

  /** `config show --json`: the whole shared config as it sees it (learn.ts decides what of it to keep). */
  async config(): Promise<FlatMapping> {
    return decodeFullConfig(await this.ok(["config", "show", "--json"], 60_000), this.who);
  }
}
