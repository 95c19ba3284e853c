import type { LinkReport } from "./links.ts";

/** What membersCutOff reads of a link report: who the reporter has up peerings with. */
export type ReportedPeerings = Pick<LinkReport, "peerings">;

/**
 * Which reporting members no live member links to, by the members' link reports
 * (consensus/links.ts): starting from `root` (the member asking, which knows it is alive), every
 * member that an already reached member reports an up peering with is reached, and so on; the
 * members with a report that are not reached are `cutOff`.
 *
 * Only a reached member's report is believed, so a dead member's report, which stays in the
 * KV until its lease ends and still lists its peerings up, vouches for nobody: two members
 * killed together are both cut off. A member with no report is never cut off (nothing is known
 * of it: an older agent, reports turned off). When `root` has no report, or reports no up
 * peering, nothing can be said: `cutOff` is empty (the fault is then most likely the root's).
 *
 * `reports`: reporter's public key → its report. Returns keys in `reports`' order. Pure; throws
 * nothing. Used by node/failure-watch.ts on the etcd leader.
 */
export function membersCutOff(reports: ReadonlyMap<string, ReportedPeerings>, root: string): { readonly cutOff: string[]; readonly reached: string[] } {
  const rootReport = reports.get(root);
  if (!rootReport?.peerings.some((p) => p.up && p.key !== undefined && p.key !== root)) return { cutOff: [], reached: [root] };
  const reached = new Set([root]);
  const queue = [root];
  for (let at = queue.shift(); at !== undefined; at = queue.shift()) {
    for (const p of reports.get(at)?.peerings ?? []) {
      if (!p.up || p.key === undefined || reached.has(p.key)) continue;
      reached.add(p.key);
      queue.push(p.key);
    }
  }
  return { cutOff: [...reports.keys()].filter((k) => !reached.has(k)), reached: [...reached] };
}
