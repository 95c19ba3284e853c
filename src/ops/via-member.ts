import type { FlatMapping } from "../config/flatten.ts";
import { clusterLabel, type ClusterId } from "../consensus/cluster-id.ts";
import { parseNeighbours } from "../mesh/neighbours.ts";
import type { SshSettings, SshTarget } from "../remote/ssh.ts";
import { EXIT_CLUSTER_UNAVAILABLE, UserError, errorMessage } from "../util/errors.ts";
import type { Outcome } from "../util/exec.ts";
import { SshNodeChannel, type NodeChannel } from "./cluster/node-channel.ts";

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
 * How onFirstChannel makes sure a member belongs to this machine's cluster before its answer is
 * used: `before` runs ahead of the command (for writes: nothing is sent to a member of another
 * cluster), `after` looks at the command's outcome (for reads, whose answer names the cluster).
 * Either returns the other cluster to pass the member over, or undefined to use it.
 */
export interface MemberCheck {
  before?(member: NodeChannel): Promise<OtherCluster | undefined>;
  after?(member: NodeChannel, out: Outcome): OtherCluster | undefined;
}

/**
 * Which members were asked: `tried` of the `named` ones (the rest were left out by a limit). What
 * an error about them says, so that it is true whether the first few or all were tried.
 * Pure; throws nothing.
 */
export function askedMembers(tried: number, named: number): string {
  if (tried < named) return `This machine asked the first ${tried} of the ${named} members its copy of the config names.`;
  return tried === 1 ? "This machine asked the one member it was given." : `This machine asked each of the ${tried} members it was given, in turn.`;
}

/**
 * No member could be used: `tried` lists each one and why (`who: reason`), `other` is set when
 * some were passed over for being in another cluster (nothing was sent to those). A caller that
 * tries further members itself lists `tried` in its own error.
 */
export class NoMemberAnswered extends UserError {
  constructor(
    message: string,
    readonly tried: readonly string[],
    readonly other?: OtherCluster,
  ) {
    super(message);
    this.name = "NoMemberAnswered";
  }
}

/**
 * Runs `raptiformica ARGV` (bounded by 60 s) on the first of `members`, in order, that can be
 * reached and passes `check`, and returns it with its outcome (whatever its exit code). A member
 * of another cluster is passed over like an unreachable one. `asked` says in the error which
 * members these are (askedMembers).
 * @throws UserError when `members` is empty (NO_MEMBER_KNOWN).
 * @throws NoMemberAnswered when none is left: it lists each member and why, and when some were in
 *   another cluster, names both clusters and what to do.
 */
export async function onFirstChannel<C extends NodeChannel>(
  members: readonly C[],
  argv: readonly string[],
  check: MemberCheck = {},
  asked: string = askedMembers(members.length, members.length),
): Promise<{ member: C; out: Outcome }> {
  if (members.length === 0) {
    throw new UserError(NO_MEMBER_KNOWN);
  }
  const tried: string[] = [];
  let other: OtherCluster | undefined;
  // A member whose own etcd did not answer (exit 75: a learner not promoted yet, a member cut
  // off) is passed over for the next one; its answer is used only when no member did better.
  let unavailable: { member: C; out: Outcome } | undefined;
  for (const member of members) {
    try {
      const early = await check.before?.(member);
      const out = early ? undefined : await member.run(argv, 60_000);
      const late = out ? check.after?.(member, out) : undefined;
      const skip = early ?? late;
      if (out && !skip && out.exitCode === EXIT_CLUSTER_UNAVAILABLE && members.length > 1) {
        unavailable ??= { member, out };
        tried.push(`${member.who}: its etcd did not answer (exit ${EXIT_CLUSTER_UNAVAILABLE})`);
        continue;
      }
      if (out && !skip) return { member, out };
      if (skip) {
        other = skip;
        tried.push(`${member.who}: it is now a member of ${clusterLabel(skip.theirs)}, not of ${clusterLabel(skip.mine)}`);
      }
    } catch (e) {
      tried.push(`${member.who}: ${errorMessage(e)}`);
    }
  }
  if (unavailable) return unavailable;
  if (other) {
    throw new NoMemberAnswered(
      `No member of ${clusterLabel(other.mine)} (the cluster this machine manages) answered; nothing was sent to a member of another cluster:\n  ${tried.join("\n  ")}\n` +
        `Run \`raptiformica slave HOST\` with a live member of ${clusterLabel(other.mine)} to refresh the members this machine knows, ` +
        `or \`raptiformica destroy\` to forget ${clusterLabel(other.mine)} here if it is gone (instances started from here are torn down). ` +
        `To manage ${clusterLabel(other.theirs)} from this machine instead, use another cache dir (\`-c DIR\`) for it.`,
      tried,
      other,
    );
  }
  throw new NoMemberAnswered(
    `No cluster member could be reached:\n  ${tried.join("\n  ")}\n` +
      `${asked} If they are gone for good, ` +
      "`raptiformica destroy` forgets that cluster here (instances started from here are torn down), or fix the hosts in this machine's copy by hand " +
      "(`mutable_config.json` in the cache dir, keys raptiformica/meshnet/neighbours/<key>/host); `raptiformica slave HOST` of a live member refreshes it.",
    tried,
  );
}

/**
 * {@link onFirstChannel} over root SSH: the first of at most `limit` of `targets` (usually
 * memberTargets of this machine's config; the original tried three), raptiformica being
 * `launcher` there. Returns the target, the SSH settings used and the outcome.
 * @throws UserError (NO_MEMBER_KNOWN) or NoMemberAnswered as onFirstChannel does; its error says
 *   how many of the targets were asked.
 */
export async function onFirstMember(
  getSettings: () => Promise<SshSettings>,
  targets: readonly SshTarget[],
  launcher: string,
  argv: readonly string[],
  limit = 3,
  check: MemberCheck = {},
): Promise<{ target: SshTarget; out: Outcome; settings: SshSettings }> {
  if (targets.length === 0) throw new UserError(NO_MEMBER_KNOWN);
  const settings = await getSettings();
  const members = targets.slice(0, limit).map((t) => new SshNodeChannel(settings, t, launcher));
  const { member, out } = await onFirstChannel(members, argv, check, askedMembers(members.length, targets.length));
  return { target: member.target, out, settings };
}
