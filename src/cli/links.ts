import type { Command } from "commander";
import Table from "cli-table3";
import { clusterFor } from "../ops/cluster/cluster.ts";
import { ownClusterId } from "../ops/cluster/member.ts";
import type { LinkMember, LinkProblem, LinkRow, LinkView, LinksAnswer } from "../ops/cluster/wire.ts";
import { pickLinkMember, routeBetween, type Route } from "../ops/links.ts";
import { formatUptime } from "../ops/members.ts";
import { UserError } from "../util/errors.ts";
import { jsonText, printable, printableText } from "../util/printable.ts";
import { contextFrom } from "./context.ts";

/** Bytes in SI units, as a person reads them: `950 B`, `1.2 kB`, `34 MB`, `5.1 GB`; `-` when unknown. Pure; throws nothing. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return "-";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** Round-trip latency in ms: `0.47 ms`, `12 ms`; `-` when the version measures none. Pure; throws nothing. */
export function formatLatency(ms: number | undefined): string {
  if (ms === undefined) return "-";
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

/**
 * The numbers a row shows, at its left (`from`) end: that end's own view, else the other end's
 * with received and sent swapped. Pure; throws nothing.
 */
export function leftView(row: LinkRow): { view: LinkView; rx?: number; tx?: number } | undefined {
  const own = row.views.find((v) => v.by === row.from.publicKey);
  if (own) return { view: own, ...(own.rxBytes !== undefined ? { rx: own.rxBytes } : {}), ...(own.txBytes !== undefined ? { tx: own.txBytes } : {}) };
  const other = row.views[0];
  if (!other) return undefined;
  return { view: other, ...(other.txBytes !== undefined ? { rx: other.txBytes } : {}), ...(other.rxBytes !== undefined ? { tx: other.rxBytes } : {}) };
}

const PLAIN = {
  style: { head: [], border: [] },
  chars: { top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "  " },
};

function trimmed(table: { toString(): string }): string {
  return `${table.toString().split("\n").map((l) => l.trimEnd()).join("\n")}\n`;
}

/**
 * Whether `row` is a dial that is down between two members linked the other way: on 0.5 two
 * members that both dial keep one of the two links, and the other dial keeps failing (EOF) for
 * as long as that one is up. Pure; throws nothing.
 */
export function linkedOtherWay(row: LinkRow, rows: readonly LinkRow[]): boolean {
  const [a, b] = [row.from.publicKey, row.to.publicKey];
  return row.status === "down" && row.dialled && a !== undefined && b !== undefined && rows.some((r) => r.status === "up" && r.from.publicKey === b && r.to.publicKey === a);
}

/** The links as a table: one row per link, its numbers as the left end sees them. */
function renderLinks(rows: readonly LinkRow[]): string {
  const table = new Table({ head: ["Node", "", "Peer", "Status", "Latency", "Received", "Sent", "Up for", "Last error"], ...PLAIN });
  for (const r of rows) {
    const left = leftView(r);
    const v = left?.view;
    const error = r.status === "up" ? "" : linkedOtherWay(r, rows) ? "(linked the other way)" : (r.views.find((x) => x.lastError)?.lastError ?? "");
    // Names and errors come from the KV (data from members): shown escaped.
    table.push([
      printable(r.from.name),
      r.dialled ? "→" : "–",
      printable(r.to.name),
      r.status,
      formatLatency(v?.latencyMs),
      formatBytes(left?.rx),
      formatBytes(left?.tx),
      v?.up && v.uptimeSeconds !== undefined ? formatUptime(Math.round(v.uptimeSeconds)) : "-",
      printable(error.length > 60 ? `${error.slice(0, 57)}...` : error),
    ]);
  }
  return trimmed(table);
}

function renderNotes(answer: LinksAnswer): string {
  const lines: string[] = [];
  if (answer.links.length > 0) {
    lines.push("→: the left node dialled the peer (–: its Yggdrasil does not say). Latency, traffic and time up as the left node reports them");
    lines.push("(from the peer's report, turned around, when the left node has none); received and sent at the left node.");
  }
  const silent = answer.members.filter((m) => m.reportedAt === undefined && m.status !== "left");
  if (silent.length > 0) lines.push(`No link report from: ${silent.map((m) => `${printable(m.name)} (${m.status})`).join(", ")}.`);
  return lines.length > 0 ? `\n${lines.join("\n")}\n` : "";
}

function renderProblems(problems: readonly LinkProblem[]): string {
  if (problems.length === 0) return "";
  return `\nproblems:\n${problems.map((p) => `  - ${printableText(p.message)}`).join("\n")}\n`;
}

/** `links A B`: the links between the two, and the route from A to B. */
function renderPair(a: LinkMember, b: LinkMember, between: readonly LinkRow[], route: Route): string {
  let out = between.length > 0 ? renderLinks(between) : `${printable(a.name)} and ${printable(b.name)} have no link between them.\n`;
  if (!route.ok) return `${out}\nroute from ${printable(a.name)} to ${printable(b.name)}: not known. ${printableText(route.why)}\n`;
  out += `\nroute from ${printable(a.name)} to ${printable(b.name)}, as Yggdrasil 0.5 forwards it (to the peer closest to ${printable(b.name)} in its spanning tree, by the members' reports):\n`;
  out += `  ${route.hops.map((h) => printable(h.name)).join(" → ")}\n`;
  for (const h of route.hops) if (h.alternatives.length > 0) out += `  (${printable(h.name)} or, as close: ${h.alternatives.map(printable).join(", ")})\n`;
  return out;
}

export function register(program: Command): void {
  program
    .command("links")
    .description("show the mesh links of every member (both ends by name, up or down, latency, traffic); with two members, the links between them and the route from the first to the second")
    .argument("[node-a]", "a member: its name, mesh address, or a unique prefix of either")
    .argument("[node-b]", "another member, as NODE-A")
    .option("--json", "print JSON")
    .action(async (nodeA: string | undefined, nodeB: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      if (nodeA !== undefined && nodeB === undefined) throw new UserError("raptiformica links takes two members (`links NODE-A NODE-B`), or none for every link.");
      const answer = await clusterFor(ctx).links();
      const clusterId = ownClusterId(ctx);
      if (!answer.quorum) process.exitCode = 1;
      if (nodeA === undefined || nodeB === undefined) {
        if (opts.json) process.stdout.write(`${jsonText(clusterId ? { clusterId, ...answer } : answer)}\n`);
        else {
          if (answer.error) process.stderr.write(`${printableText(answer.error)}\n`);
          process.stdout.write(answer.links.length > 0 ? renderLinks(answer.links) : "No links reported.\n");
          process.stdout.write(renderNotes(answer));
          process.stdout.write(renderProblems(answer.problems));
        }
        return;
      }
      if (answer.error) process.stderr.write(`${printableText(answer.error)}\n`);
      const a = pickLinkMember(answer, nodeA);
      const b = pickLinkMember(answer, nodeB);
      const ends = new Set([a.publicKey, b.publicKey]);
      const between = answer.links.filter((l) => l.from.publicKey !== undefined && l.to.publicKey !== undefined && ends.has(l.from.publicKey) && ends.has(l.to.publicKey) && l.from.publicKey !== l.to.publicKey);
      const route = routeBetween(answer, a.publicKey, b.publicKey);
      if (opts.json) {
        const pick = (m: LinkMember) => ({ name: m.name, publicKey: m.publicKey });
        const shown = route.ok ? { hops: route.hops } : { why: route.why };
        process.stdout.write(`${jsonText({ ...(clusterId ? { clusterId } : {}), quorum: answer.quorum, from: pick(a), to: pick(b), links: between, route: shown })}\n`);
      } else process.stdout.write(renderPair(a, b, between, route));
    });
}
