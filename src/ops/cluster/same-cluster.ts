import { clusterIdOf, type ClusterId } from "../../consensus/cluster-id.ts";
import type { Outcome } from "../../util/exec.ts";
import type { MemberCheck, OtherCluster } from "../via-member.ts";
import { configText, identityAnswer } from "./wire.ts";

/**
 * Whether a member reporting `theirs` is of another cluster than `mine` (this machine's):
 * when either is unknown (this machine manages none yet, an older member reports none), it is
 * taken as before.
 * Pure; throws nothing.
 */
export function otherCluster(mine: ClusterId | undefined, theirs: ClusterId | undefined): OtherCluster | undefined {
  return mine && theirs && mine !== theirs ? { mine, theirs } : undefined;
}

/**
 * The `clusterId` of a JSON answer (`identity --json`, `members --json`), if it reports a valid one.
 * Pure; throws nothing: an answer that cannot be read names no cluster.
 */
export function reportedClusterId(stdout: string): ClusterId | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  // Only the one field matters here; the rest of the answer is decoded (and refused) by its reader.
  const r = identityAnswer.pick({ clusterId: true }).safeParse(parsed);
  return r.success ? r.data.clusterId : undefined;
}

/**
 * For reads: the member's answer names its cluster (`clusterId` in its JSON, or the CA in the
 * config it shows: `idOf`); the answer of a member of another cluster is not used.
 * Pure; throws nothing.
 */
export function checkAnswer(mine: ClusterId | undefined, idOf: (out: Outcome) => ClusterId | undefined): MemberCheck {
  return { after: (_member, out) => otherCluster(mine, idOf(out)) };
}

/**
 * For writes: before anything is sent, the member's `identity --json` (one cheap call, bounded
 * by 60 s) must not name another cluster. A member that cannot answer it is taken as before
 * (the write then fails or succeeds there on its own terms).
 * Throws nothing itself; its `before` rejects as the member's channel does when the member cannot be reached (onFirstChannel then tries the next).
 */
export function checkBeforeWrite(mine: ClusterId | undefined): MemberCheck {
  if (!mine) return {};
  return {
    async before(member) {
      const out = await member.run(["identity", "--json"], 60_000);
      return otherCluster(mine, out.exitCode === 0 ? reportedClusterId(out.stdout) : undefined);
    },
  };
}

/**
 * The cluster of the config a member shows (`config show --json`: the CA it holds), if it is a usable config (wire.ts configText).
 * Pure; throws nothing.
 */
export function shownConfigClusterId(stdout: string): ClusterId | undefined {
  const shown = configText.safeParse(stdout);
  return shown.success ? clusterIdOf(shown.data) : undefined;
}
