import type { FlatMapping } from "../config/flatten.ts";
import { parseNeighbours } from "../mesh/neighbours.ts";
import { describeTarget, sshRun, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import type { Outcome } from "../util/exec.ts";

/** Why a command that needs a member cannot run on a machine that is none and knows none. */
export const NO_MEMBER_KNOWN =
  "This machine knows no cluster member (no neighbours with a host in its config). Bring one in with `raptiformica slave HOST`, or run this on a member.";

/** Members an operator machine can try, from its copy of the shared config. */
export function memberTargets(mapping: FlatMapping): SshTarget[] {
  return parseNeighbours(mapping)
    .filter((n) => n.host && !n.left)
    .map((n) => ({ host: n.host as string, port: n.sshPort }));
}

/**
 * Runs argv on the first of at most `limit` members that can be reached (the original tried
 * three), and returns its outcome; if none answers, one error lists each host and why.
 */
export async function onFirstMember(
  getSettings: () => Promise<SshSettings>,
  mapping: FlatMapping,
  argv: readonly string[],
  limit = 3,
): Promise<{ target: SshTarget; out: Outcome; settings: SshSettings }> {
  const targets = memberTargets(mapping);
  if (targets.length === 0) {
    throw new UserError(NO_MEMBER_KNOWN);
  }
  const settings = await getSettings();
  const tried: string[] = [];
  for (const target of targets.slice(0, limit)) {
    try {
      return { target, settings, out: await sshRun(settings, target, argv, { timeoutMs: 60_000 }) };
    } catch (e) {
      tried.push(`${describeTarget(target)}: ${errorMessage(e)}`);
    }
  }
  throw new UserError(
    `No cluster member could be reached over SSH:\n  ${tried.join("\n  ")}\n` +
      "This machine asks the members its copy of the config names (the first 3 with a host). If they are gone for good, " +
      "`raptiformica destroy` forgets that cluster here (instances started from here are torn down), or fix the hosts in this machine's copy by hand " +
      "(`mutable_config.json` in the cache dir, keys raptiformica/meshnet/neighbours/<key>/host); `raptiformica slave HOST` of a live member refreshes it.",
  );
}
