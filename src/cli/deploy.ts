import type { Command } from "commander";
import { readFileSync } from "node:fs";
import Table from "cli-table3";
import { UserError } from "../util/errors.ts";
import { parseInventory } from "../ops/inventory.ts";
import { installModule } from "../ops/install.ts";
import { deploy, hostLabel, type HostReport } from "../ops/deploy.ts";
import type { SlaveFlags } from "../ops/slave.ts";
import { contextFrom } from "./context.ts";
import { parsePositiveInt, withServerType, withSlaveFlags } from "./options.ts";
import { runJobs } from "./progress.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";
import { jsonText, printable, printableText } from "../util/printable.ts";

interface DeployOptions extends TypeFlags, SlaveFlags {
  modules?: string[];
  concurrent: number;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("deploy")
    .description("(re)create a whole network from an inventory of hosts")
    .argument("<inventory>", 'JSON file: [{"dst": "1.2.3.4", "port": 22, "via": "<another dst>"}, …]');
  withSlaveFlags(withServerType(cmd))
    .option("--modules <module...>", "modules to install before deploying")
    .option("--concurrent <n>", "hosts to work on at once", parsePositiveInt, 5)
    .option("--json", "print the per-host results as JSON instead of a table")
    .action(async (inventory: string, opts: DeployOptions, command: Command) => {
      let text: string;
      try {
        text = readFileSync(inventory, "utf8");
      } catch (e) {
        throw new UserError(`Cannot read the inventory ${inventory}: ${(e as Error).message}.`);
      }
      // The whole inventory is checked before anything is touched (modules, hosts).
      const hosts = parseInventory(text, inventory);
      if (!hosts.ok) throw new UserError(hosts.error);
      const ctx = contextFrom(command);
      for (const m of opts.modules ?? []) {
        const r = await installModule(ctx.config, m, ctx.log);
        ctx.log.info(`${r.replaced ? "Updated" : "Installed"} module ${r.name} in ${r.dir}: ${r.files} module file(s), ${r.keys} key(s).`);
      }
      // After the modules: one of them may bring the server type.
      const { server } = await chooseTypes(ctx, opts, { server: true });
      const report = await deploy(
        ctx,
        { hosts: hosts.value, serverType: server as string, flags: opts, concurrent: opts.concurrent },
        (jobs, concurrent) => {
          // Plain progress lines (-v, or no terminal) interleave the hosts: say which host each is about.
          const plain = ctx.log.verbose || !process.stderr.isTTY;
          const labelled = plain ? jobs.map((j) => ({ title: j.title, run: (report: (t: string) => void) => j.run((t) => report(`${j.title}: ${t}`)) })) : jobs;
          return runJobs(labelled, { concurrent, verbose: ctx.log.verbose });
        },
      );
      if (report.refreshProblem) ctx.log.warn(`could not refresh this machine's view of the cluster after deploying: ${report.refreshProblem}`);
      if (opts.json) process.stdout.write(`${jsonText(report)}\n`);
      else process.stdout.write(renderDeployTable(report.hosts, process.stdout.isTTY ? process.stdout.columns : undefined));
      const failed = report.hosts.filter((h) => !h.ok);
      const summary = `deployed ${report.hosts.length - failed.length} of ${report.hosts.length} host(s) in ${report.totalSeconds} s`;
      if (failed.length) throw new UserError(`${summary}; failed: ${failed.map((h) => hostLabel(h)).join(", ")} (see the table for why).`);
      ctx.log.info(summary);
    });
}

/**
 * One row per host: host, via, ok/failed, the role it has now (or why it failed, wrapped so a
 * long error stays readable), and the seconds spent on it.
 */
export function renderDeployTable(hosts: readonly HostReport[], columns = 100): string {
  const head = ["Host", "Via", "Result", "Role / error", "Seconds"];
  // Hosts come from the inventory, roles, addresses and errors from the hosts: shown escaped.
  const label = (h: HostReport) => printable(hostLabel(h));
  const via = (h: HostReport) => printable(h.via ?? "-");
  const hostW = Math.max(head[0]!.length, ...hosts.map((h) => label(h).length)) + 2;
  const viaW = Math.max(head[1]!.length, ...hosts.map((h) => via(h).length)) + 2;
  const resultW = 8;
  const secondsW = 9;
  // 6 borders; the rest is for the role / error column.
  const detailW = Math.max(24, Math.min(columns, 160) - hostW - viaW - resultW - secondsW - 6);
  const table = new Table({
    head,
    colWidths: [hostW, viaW, resultW, detailW, secondsW],
    colAligns: ["left", "left", "left", "left", "right"],
    style: { head: [], border: [] },
  });
  for (const h of hosts) {
    const detail = h.ok ? `${h.role ?? (h.meshAddress ? "member" : "provisioned")}${h.meshAddress ? ` ${h.meshAddress}` : ""}${h.bootstrapped ? " (first member)" : ""}` : (h.error ?? "failed");
    table.push([label(h), via(h), h.ok ? "ok" : "failed", wrapText(printableText(detail), detailW - 2), h.seconds.toFixed(1)]);
  }
  return `${table.toString()}\n`;
}

/** Wraps on spaces; a word longer than a line (an address, a path) is split, never cut short. */
export function wrapText(text: string, width: number): string {
  const w = Math.max(1, width);
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (let word of paragraph.split(/\s+/).filter(Boolean)) {
      while (word.length > w) {
        const room = line ? w - line.length - 1 : w;
        if (room < 8 && line) {
          lines.push(line);
          line = "";
          continue;
        }
        lines.push(line ? `${line} ${word.slice(0, room)}` : word.slice(0, room));
        line = "";
        word = word.slice(room);
      }
      if (!line) line = word;
      else if (line.length + 1 + word.length <= w) line += ` ${word}`;
      else {
        lines.push(line);
        line = word;
      }
    }
    lines.push(line);
  }
  return lines.join("\n");
}
