import type { Command } from "commander";
import Table from "cli-table3";
import { rejoinNow } from "../ops/node.ts";
import { clusterFor } from "../ops/cluster/cluster.ts";
import { ownClusterId } from "../ops/cluster/member.ts";
import type { ClusterProblem, MemberRow } from "../ops/cluster/wire.ts";
import { evictGone, formatUptime } from "../ops/members.ts";
import { contextFrom } from "./context.ts";
import { jsonText, printable, printableText } from "../util/printable.ts";

function render(rows: readonly MemberRow[]): string {
  const table = new Table({
    head: ["Node", "Mesh address", "Host", "Status", "Role", "Uptime"],
    style: { head: [], border: [] },
    chars: { top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "  " },
  });
  // Every cell but the uptime is data from the KV (or a member): shown escaped.
  for (const r of rows) table.push([r.name, r.meshAddress, r.host ?? "-", r.status, r.role ?? "-"].map((c) => printable(String(c))).concat(formatUptime(r.uptimeSeconds)));
  return `${table.toString().split("\n").map((l) => l.trimEnd()).join("\n")}\n`;
}

/** The problems after the table: each a paragraph saying what is wrong and what to do. */
function renderProblems(problems: readonly ClusterProblem[]): string {
  if (problems.length === 0) return "";
  return `\nproblems:\n${problems.map((p) => `  - ${printableText(p.message)}`).join("\n")}\n`;
}

/** An etcd alarm (NOSPACE) stops writes like lost quorum does: `members` exits 1 for both. */
function hasAlarm(problems: readonly ClusterProblem[] | undefined): boolean {
  return (problems ?? []).some((p) => p.kind === "alarm");
}

export function register(program: Command): void {
  program
    .command("members")
    .description("show the cluster members and their state")
    .option("-r, --rejoin", "run one reconcile of this member now (what the cluster_change hook does)")
    .option("--evict", "remove members that have been gone longer than the eviction grace period")
    .option("--json", "print JSON")
    .action(async (opts: { rejoin?: boolean; evict?: boolean; json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      if (opts.evict) {
        const { evicted, evictAfterSeconds } = await evictGone(ctx);
        if (evicted.length === 0) ctx.log.info(`nothing to evict: no member has been gone for ${evictAfterSeconds} s (meshnet/evict_after)`);
        for (const e of evicted) process.stdout.write(`evicted ${printable(e.name)} ${printable(e.publicKey)} (gone for ${Math.round(e.goneMs / 1000)} s)\n`);
        return;
      }
      if (opts.rejoin) {
        await rejoinNow(ctx);
        return;
      }
      const answer = await clusterFor(ctx).members();
      // A member names its cluster, so that an operator machine can tell it is still in its own.
      const clusterId = ownClusterId(ctx);
      if (opts.json) process.stdout.write(`${jsonText(clusterId ? { clusterId, ...answer } : answer)}\n`);
      else {
        if (answer.error) process.stderr.write(`${printableText(answer.error)}\n`);
        process.stdout.write(render(answer.members));
        const recent = (answer.voterChanges ?? []).slice(-5);
        if (recent.length > 0) process.stdout.write(`\nrecent voter changes:\n${recent.map((c) => `  ${printable(c.time)}  ${printableText(c.change)}`).join("\n")}\n`);
        process.stdout.write(renderProblems(answer.problems ?? []));
      }
      if (!answer.quorum || hasAlarm(answer.problems)) process.exitCode = 1;
    });
}
