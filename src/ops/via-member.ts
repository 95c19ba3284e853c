import type { FlatMapping } from "../config/flatten.ts";
import { clusterLabel, type ClusterId } from "../consensus/cluster-id.ts";
import { parseNeighbours } from "../mesh/neighbours.ts";
import { describeTarget, sshRun, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import type { Outcome } from "../util/exec.ts";

/** Why a command that needs a member cannot run on a machine that is none and knows none. */
export const NO_MEMBER_KNOWN =
  "This machine knows no cluster member (no neighbours with a host in its config). Bring one in with `raptiformica slave HOST`, or run this on a member.";

/**
 * Members an operator machine can try, from its copy of the shared config.
 * Pure; throws nothing.
 */
export function memberTargets(mapping: FlatMapping): SshTarget[] {
  return parseNeighbours(mapping)
    .filter((n) => n.host && !n.left)
    .map((n) => ({ host: n.host as string, port: n.sshPort }));
}

/** A member passed over because it is in another cluster than this machine's (see MemberCheck). */
export interface OtherCluster {
  readonly mine: ClusterId;
  readonly theirs: ClusterId;
}

/**
 * How onFirstMember makes sure a member belongs to this machine's cluster before its answer is
 * used: `before` runs ahead of the command (for writes: nothing is sent to a member of another
 * cluster), `after` looks at the command's outcome (for reads, whose answer names the cluster).
 * Either returns the other cluster to pass the member over, or undefined to use it.
 */
export interface MemberCheck {
  before?(settings: SshSettings, target: SshTarget): Promise<OtherCluster | undefined>;
  after?(target: SshTarget, out: Outcome): OtherCluster | undefined;
}

/**
 * Runs argv on the first of at most `limit` of `targets` (usually memberTargets of this
 * machine's config; the original tried three) that can be reached and pass `check`, and
 * returns its outcome. A member of another cluster is passed over like an unreachable one.
 * @throws UserError when `targets` is empty (NO_MEMBER_KNOWN), or none is left: one error lists
 *   each host and why, and when some were in another cluster, names both clusters and what to do.
 */
export async function onFirstMember(
  getSettings: () => Promise<SshSettings>,
  targets: readonly SshTarget[],
  argv: readonly string[],
  limit = 3,
  check: MemberCheck = {},
): Promise<{ target: SshTarget; out: Outcome; settings: SshSettings }> {
  if (targets.length === 0) {
    throw new UserError(NO_MEMBER_KNOWN);
  }
  const settings = await getSettings();
  const tried: string[] = [];
  let other: OtherCluster | undefined;
  for (const target of targets.slice(0, limit)) {
    try {
      const early = await check.before?.(settings, target);
      const out = early ? undefined : await sshRun(settings, target, argv, { timeoutMs: 60_000 });
      const late = out ? check.after?.(target, out) : undefined;
      const skip = early ?? late;
      if (out && !skip) return { target, settings, out };
      if (skip) {
        other = skip;
        tried.push(`${describeTarget(target)}: it is now a member of ${clusterLabel(skip.theirs)}, not of ${clusterLabel(skip.mine)}`);
      }
    } catch (e) {
      tried.push(`${describeTarget(target)}: ${errorMessage(e)}`);
    }
  }
  if (other) {
    throw new UserError(
      `No member of ${clusterLabel(other.mine)} (the cluster this machine manages) answered; nothing was sent to a member of another cluster:\n  ${tried.join("\n  ")}\n` +
        `Run \`raptiformica slave HOST\` with a live member of ${clusterLabel(other.mine)} to refresh the members this machine knows, ` +
        `or \`raptiformica destroy\` to forget ${clusterLabel(other.mine)} here if it is gone (instances started from here are torn down). ` +
        `To manage ${clusterLabel(other.theirs)} from this machine instead, use another cache dir (\`-c DIR\`) for it.`,
    );
  }
  throw new UserError(
    `No cluster member could be reached over SSH:\n  ${tried.join("\n  ")}\n` +
      "This machine asks the members its copy of the config names (the first 3 with a host). If they are gone for good, " +
      "`raptiformica destroy` forgets that cluster here (instances started from here are torn down), or fix the hosts in this machine's copy by hand " +
      "(`mutable_config.json` in the cache dir, keys raptiformica/meshnet/neighbours/<key>/host); `raptiformica slave HOST` of a live member refreshes it.",
  );
}
