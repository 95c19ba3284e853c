import { existsSync } from "node:fs";
import type { Command } from "commander";
import Table from "cli-table3";
import { SharedConfig } from "../node/shared-config.ts";
import { runningAgent } from "../node/agent-lock.ts";
import { ensureAgent } from "../ops/node.ts";
import { cachedMembers, clusterMembers, formatUptime, type ClusterProblem, type MemberRow } from "../ops/members.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import { onFirstMember } from "../ops/via-member.ts";
import { readVoterLog, type VoterLogEntry } from "../consensus/voters.ts";
import { evictionPass } from "../consensus/gone.ts";
import { memberSettings } from "../node/last-good-settings.ts";
import { readStatus } from "../node/status.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { describeTarget } from "../remote/ssh.ts";
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
      const isMember = existsSync(ctx.node.nodeCert);
      if (opts.evict) {
        if (!isMember) throw new UserError("members --evict runs on a cluster member (it changes the cluster's KV). Run it there, e.g. through `raptiformica ssh`.");
        const shared = await SharedConfig.open(ctx.config, ctx.node, ctx.log);
        try {
          if (!shared.client) throw new UserError("The cluster KV does not answer on this member (no quorum?); nothing can be evicted now.");
          const { mapping } = await shared.snapshot();
          const { evictAfterSeconds } = memberSettings(mapping, ctx.node);
          const self = readStatus(ctx.node.status)?.publicKey ?? "";
          const evicted = await evictionPass(shared.client, { self, evictAfterMs: evictAfterSeconds * 1000 });
          if (evicted.length === 0) ctx.log.info(`nothing to evict: no member has been gone for ${evictAfterSeconds} s (meshnet/evict_after)`);
          for (const e of evicted) process.stdout.write(`evicted ${printable(e.name)} ${printable(e.publicKey)} (gone for ${Math.round(e.goneMs / 1000)} s)\n`);
        } finally {
          shared.close();
        }
        return;
      }
      if (opts.rejoin) {
        if (!existsSync(ctx.node.yggdrasilDir)) throw new UserError(`This machine is not a cluster member (no node state in ${ctx.node.root}); run \`raptiformica mesh\` first.`);
        const pid = runningAgent(ctx.node.agentPid);
        if (pid !== undefined) process.kill(pid, "SIGUSR1");
        else await ensureAgent(ctx.paths);
        return;
      }
      if (!isMember) {
        // An operator machine: ask the first reachable member.
        const { mapping } = ctx.config.snapshot();
        const { target, out } = await onFirstMember(() => sshSettings(ctx.paths, ctx.log), mapping, [remoteCommand(mapping), "members", "--json"]);
        let parsed: { quorum: boolean; error?: string; members: MemberRow[]; problems?: ClusterProblem[] };
        try {
          parsed = JSON.parse(out.stdout);
        } catch {
          throw new UserError(`${describeTarget(target)} answered \`members --json\` with something else (exit ${out.exitCode}): ${out.stderr.trim() || out.stdout.slice(0, 200)}`);
        }
        if (opts.json) process.stdout.write(`${jsonText(parsed)}\n`);
        else {
          if (parsed.error) process.stderr.write(`${printableText(String(parsed.error))}\n`);
          process.stdout.write(render(parsed.members) + renderProblems(parsed.problems ?? []));
        }
        if (!parsed.quorum || hasAlarm(parsed.problems)) process.exitCode = 1;
        return;
      }
      const { mapping } = ctx.config.snapshot();
      // Quiet: unusable keys in the KV are listed with the problems below.
      const shared = await SharedConfig.open(ctx.config, ctx.node, ctx.log, { quiet: true });
      let rows: MemberRow[];
      let problems: ClusterProblem[];
      let changes: VoterLogEntry[] = [];
      try {
        if (!shared.client) throw new Error("no member answers on 127.0.0.1 or over the mesh");
        ({ rows, problems } = await clusterMembers(shared.client, ctx.node));
        changes = await readVoterLog(shared.client).catch(() => []);
      } catch (e) {
        rows = cachedMembers(mapping);
        const why = errorMessage(e);
        const msg =
          `The cluster KV does not answer on this member (${why}): etcd has lost quorum or is not running here. ` +
          `Showing what the local cache knows; statuses are unknown. The agent keeps retrying` +
          (runningAgent(ctx.node.agentPid) === undefined ? " — but no agent runs here: start it with `raptiformica mesh`." : ".") +
          " If voters are gone for good (quorum cannot come back), run `raptiformica recover` on the surviving voter with the newest data.";
        if (opts.json) {
          process.stdout.write(`${jsonText({ quorum: false, error: msg, members: rows })}\n`);
        } else {
          process.stderr.write(`${msg}\n`);
          process.stdout.write(render(rows));
        }
        process.exitCode = 1;
        return;
      } finally {
        shared.close();
      }
      if (opts.json) process.stdout.write(`${jsonText({ quorum: true, members: rows, voterChanges: changes, problems })}\n`);
      else {
        process.stdout.write(render(rows));
        const recent = changes.slice(-5);
        if (recent.length > 0) process.stdout.write(`\nrecent voter changes:\n${recent.map((c) => `  ${printable(String(c.time))}  ${printableText(String(c.change))}`).join("\n")}\n`);
        process.stdout.write(renderProblems(problems));
      }
      if (hasAlarm(problems)) process.exitCode = 1;
    });
}
