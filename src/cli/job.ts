import type { Command } from "commander";
import Table from "cli-table3";
import { clusterFor } from "../ops/cluster/cluster.ts";
import { ownClusterId } from "../ops/cluster/member.ts";
import type { JobAnswer, JobProblemRow, JobRow, RunView } from "../ops/cluster/job-wire.ts";
import { checkJobRequest } from "../ops/job/jobs.ts";
import { jsonText, printable, printableText } from "../util/printable.ts";
import { contextFrom } from "./context.ts";

const PLAIN = {
  style: { head: [], border: [] },
  chars: { top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "  " },
};

function trimmed(table: { toString(): string }): string {
  return `${table.toString().split("\n").map((l) => l.trimEnd()).join("\n")}\n`;
}

/** A time as tables show it: UTC, to the second. */
function when(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** A command line as people read it; every word from the KV, shown escaped. */
function commandLine(argv: readonly string[] | undefined): string {
  return argv ? argv.map((a) => printable(a)).join(" ") : "-";
}

function renderProblems(problems: readonly JobProblemRow[]): string {
  if (problems.length === 0) return "";
  return `\nproblems:\n${problems.map((p) => `  - ${printableText(p.message)}`).join("\n")}\n`;
}

function renderList(jobs: readonly JobRow[]): string {
  if (jobs.length === 0) return "no jobs\n";
  const table = new Table({ head: ["Job", "State", "On", "Runs", "Succeeded", "Failed", "Running", "Command"], ...PLAIN });
  for (const j of jobs) table.push([printable(j.name), j.state, printable(j.on ?? "-"), j.runs, j.succeeded, j.failed, j.running, commandLine(j.argv)]);
  return trimmed(table);
}

function endOf(r: RunView): string {
  if (r.outcome === "running" || r.outcome === "lost") return "-";
  if (r.timedOut) return "timed out";
  if (r.error !== undefined) return printable(r.error);
  return r.exitCode === null || r.exitCode === undefined ? `signal ${printable(r.signal ?? "?")}` : String(r.exitCode);
}

function renderJob(j: JobAnswer): string {
  const lines = [
    `job ${printable(j.name)}: ${j.state}`,
    `  command:  ${commandLine(j.argv)}`,
    `  on:       ${printable(j.on ?? "-")}${j.restart ? ", restart always" : j.retries !== undefined ? `, retries ${j.retries}` : ""}${j.timeoutSeconds !== undefined ? `, timeout ${j.timeoutSeconds} s` : ""}`,
    `  created:  ${when(j.createdAt)}${j.cancelledAt !== undefined ? `, cancelled ${when(j.cancelledAt)}` : ""}`,
  ];
  if (j.schedule) lines.push(`  schedule: ${j.schedule.every !== undefined ? `every ${j.schedule.every} s from ${when(j.schedule.first)}` : `at ${when(j.schedule.first)}`}${j.nextDueAt !== undefined ? `, next ${when(j.nextDueAt)}` : ""}`);
  const waiting = j.slots.filter((s) => s.state === "pending").map((s) => printable(s.member ?? s.slot));
  if (waiting.length > 0) lines.push(`  waiting:  ${waiting.join(", ")}`);
  let out = `${lines.join("\n")}\n`;
  if (j.runs.length === 0) return `${out}\nno runs yet\n${renderProblems(j.problems)}`;
  const table = new Table({ head: ["Run", "Member", "Outcome", "Started", "Ended", "Exit", "Fence"], ...PLAIN });
  for (const r of j.runs) table.push([printable(r.id), printable(r.member), r.outcome, when(r.startedAt), when(r.endedAt), endOf(r), r.fence]);
  out += `\n${trimmed(table)}`;
  for (const r of j.runs) {
    if (!r.outputTail) continue;
    out += `\noutput of run ${printable(r.id)} on ${printable(r.member)} (the last 4 KiB; the whole log is on that member):\n${printableText(r.outputTail).replace(/\n?$/, "\n")}`;
  }
  return out + renderProblems(j.problems);
}

export function register(program: Command): void {
  const job = program.command("job").description("run commands on the cluster's members: once, on every member, or on members with a label");

  job
    .command("run")
    .description("store a job: its members' agents run COMMAND (no shell) and record each run")
    .argument("<command...>", "the command and its arguments, after `--`")
    .option("--name <name>", "the job's name (default: the command's name and a random suffix)")
    .option("--on <placement>", "one (a single run somewhere), all (every alive member) or LABEL=VALUE (every alive member with that label)", "one")
    .option("--retries <n>", "run a failed run again up to N times", "0")
    .option("--timeout <duration>", "kill a run's process group after this long (90, 90s, 5m, 1h30m)")
    .option("--restart <policy>", "always: a service, one instance kept running; another member takes it over when its member is lost")
    .option("--every <duration>", "run it again every DURATION (whole seconds: 30s, 5m, 1h), each due run once on one member; missed runs are caught up once, not one by one")
    .option("--at <time>", "run it at TIME (RFC 3339, or HH:MM on this machine's clock: the next such time); with --every, the first due time")
    .option("--json", "print the stored job as JSON")
    .action(async (argv: string[], opts: { name?: string; on?: string; retries?: string; timeout?: string; restart?: string; every?: string; at?: string; json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const request = checkJobRequest({ ...opts, argv });
      const stored = await clusterFor(ctx).jobRun(request);
      if (opts.json) {
        const clusterId = ownClusterId(ctx);
        process.stdout.write(`${jsonText(clusterId ? { clusterId, ...stored } : stored)}\n`);
        return;
      }
      const where = stored.schedule
        ? `on one member ${stored.schedule.every !== undefined ? `every ${stored.schedule.every} s from ${when(stored.schedule.first)}` : `at ${when(stored.schedule.first)}`}`
        : stored.restart
        ? `as a service kept running on one of ${stored.members ? stored.members.map((m) => printable(m.name)).join(", ") : "the members"}`
        : stored.members
          ? `on ${stored.members.length} member(s): ${stored.members.map((m) => printable(m.name)).join(", ")}`
          : "on one member";
      process.stdout.write(`job ${printable(stored.name)} stored, to run ${where}. \`raptiformica job show ${printable(stored.name)}\` shows its runs.\n`);
    });

  job
    .command("ls")
    .description("list the jobs and their state")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const answer = await clusterFor(ctx).jobList();
      const clusterId = ownClusterId(ctx);
      if (opts.json) process.stdout.write(`${jsonText(clusterId ? { clusterId, ...answer } : answer)}\n`);
      else process.stdout.write(renderList(answer.jobs) + renderProblems(answer.problems));
    });

  job
    .command("show")
    .description("show a job and each of its runs: member, start, end, exit code, the tail of its output")
    .argument("<name>", "the job's name")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const answer = await clusterFor(ctx).jobShow(name);
      const clusterId = ownClusterId(ctx);
      if (opts.json) process.stdout.write(`${jsonText(clusterId ? { clusterId, ...answer } : answer)}\n`);
      else process.stdout.write(renderJob(answer));
    });

  job
    .command("logs")
    .description("print the whole log of a run (the latest, or --run ID) from the member that ran it; --follow: and what it writes until it ends")
    .argument("<name>", "the job's name")
    .option("--run <id>", "the run (as `job show` lists it), default the latest started")
    .option("--follow", "keep printing what the command writes until its run ends")
    .action(async (name: string, opts: { run?: string; follow?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      await clusterFor(ctx).jobLogs(
        name,
        { ...(opts.run !== undefined ? { run: opts.run } : {}), ...(opts.follow ? { follow: true } : {}) },
        // A terminal gets the output escaped, as `job show` does (a run's bytes are anyone's).
        (b) => process.stdout.write(process.stdout.isTTY ? printableText(b.toString()) : b),
        (s) => process.stderr.write(`${printableText(s)}\n`),
      );
    });

  job
    .command("rm")
    .description("remove a finished or cancelled job and its run records from the KV (the logs on the members stay)")
    .argument("<name>", "the job's name")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const removed = await clusterFor(ctx).jobRemove(name);
      if (opts.json) process.stdout.write(`${jsonText(removed)}\n`);
      else process.stdout.write(`job ${printable(name)} removed, with its ${removed.runs} run record(s).\n`);
    });

  job
    .command("fence-check")
    .description("exit 0 when FENCE (a run's RAPTIFORMICA_JOB_FENCE) is still the fencing token of a standing claim of job NAME, 1 when it is stale (the claim expired or the run ended)")
    .argument("<name>", "the job's name")
    .argument("<fence>", "the fencing token, as the run got it in RAPTIFORMICA_JOB_FENCE")
    .option("--json", "print JSON (and exit 0 either way)")
    .action(async (name: string, fence: string, opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const answer = await clusterFor(ctx).jobFenceCheck(name, fence);
      const clusterId = ownClusterId(ctx);
      if (opts.json) {
        process.stdout.write(`${jsonText(clusterId ? { clusterId, ...answer } : answer)}\n`);
        return;
      }
      if (answer.valid) process.stdout.write(`fence ${printable(fence)} of job ${printable(name)} holds: its claim stands.\n`);
      else {
        process.stdout.write(`fence ${printable(fence)} of job ${printable(name)} is stale: ${answer.current.length > 0 ? `the claims standing now have fence ${answer.current.join(", ")}` : "no claim of it stands now"}. Do not act on that run's behalf.\n`);
        process.exitCode = 1;
      }
    });

  job
    .command("cancel")
    .description("cancel a job: nothing more of it is started, its running processes are ended")
    .argument("<name>", "the job's name")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const cancelled = await clusterFor(ctx).jobCancel(name);
      if (opts.json) process.stdout.write(`${jsonText({ cancelled })}\n`);
      else if (cancelled) process.stdout.write(`job ${printable(name)} cancelled: nothing more of it starts, and the members running it end its processes.\n`);
      else process.stdout.write(`job ${printable(name)} was already cancelled.\n`);
    });
}
