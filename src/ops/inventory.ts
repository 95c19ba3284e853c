import type { SshTarget } from "../remote/ssh.ts";
import { describeHostProblem, parseHost } from "../mesh/host.ts";
import { err, ok, type Result } from "../util/result.ts";

/** One host of a `deploy` inventory, with the jump hosts needed to reach it resolved. */
export interface InventoryHost {
  readonly index: number;
  readonly dst: string;
  readonly port: number;
  readonly via?: string;
  /** How to reach it: `via` chains become ProxyJump hops, outermost first. */
  readonly target: SshTarget;
}

function describe(i: number, item: unknown): string {
  const dst = typeof item === "object" && item !== null && "dst" in item ? ` (dst ${JSON.stringify((item as { dst: unknown }).dst)})` : "";
  return `entry ${i + 1}${dst}`;
}

/** One entry that passed the per-entry checks; `n` is its position in the file (1-based). */
interface Entry {
  readonly n: number;
  readonly dst: string;
  readonly port: number;
  readonly via?: string;
}

/**
 * The original's inventory format — `[{"dst": "1.2.3.4", "port": "2222", "via": "<another dst>"}]`
 * — validated as a whole: every problem names the file and the entry by its position in the
 * file (entries that fail their own checks still count). `dst` and `via` go through
 * `parseHost`, the rule the cluster dials hosts by, and are compared in its normalized form
 * (`[2001:db8::1]` and `2001:db8::1` are one host). Unlike the original, `via` works (ProxyJump
 * chains); an unknown `via`, a host that is its own `via`, and cycles are rejected.
 * Pure; throws nothing (problems are the Result's error).
 */
export function parseInventory(text: string, file: string): Result<InventoryHost[], string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return err(`Inventory ${file} is not valid JSON (${(e as Error).message}).`);
  }
  if (!Array.isArray(doc) || doc.length === 0) {
    return err(`Inventory ${file} must be a non-empty JSON array of {"dst": HOST, "port": PORT, "via": OTHER_DST} objects.`);
  }
  const problems: string[] = [];
  const parsed: Entry[] = [];
  doc.forEach((item, i) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      problems.push(`${describe(i, item)} is not an object`);
      return;
    }
    const o = item as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !["dst", "port", "via"].includes(k));
    if (unknown.length) problems.push(`${describe(i, item)} has unknown key(s) ${unknown.join(", ")}`);
    if (typeof o["dst"] !== "string") {
      problems.push(`${describe(i, item)} needs "dst": a hostname or IP address`);
      return;
    }
    const dst = parseHost(o["dst"]);
    if (!dst.ok) {
      problems.push(`entry ${i + 1}: "dst" ${describeHostProblem(o["dst"], dst.error, 'in "port"')}`);
      return;
    }
    const rawPort = o["port"] ?? 22;
    const port = typeof rawPort === "number" ? rawPort : typeof rawPort === "string" && /^\d+$/.test(rawPort) ? Number(rawPort) : NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${describe(i, item)} has port ${JSON.stringify(rawPort)}, not a TCP port`);
    let via: string | undefined;
    if (o["via"] !== undefined) {
      const v = typeof o["via"] === "string" ? parseHost(o["via"]) : undefined;
      if (v === undefined) problems.push(`${describe(i, item)} has a "via" that is not a string`);
      else if (!v.ok) problems.push(`entry ${i + 1} (dst ${dst.value.value}): "via" ${describeHostProblem(o["via"] as string, v.error, "in that entry's \"port\"")}`);
      else via = v.value.value;
    }
    parsed.push({ n: i + 1, dst: dst.value.value, port, ...(via !== undefined ? { via } : {}) });
  });
  const byDst = new Map<string, Entry>();
  for (const p of parsed) {
    const first = byDst.get(p.dst);
    if (first) problems.push(`entry ${p.n} repeats dst ${p.dst} (also entry ${first.n}); "via" would be ambiguous`);
    else byDst.set(p.dst, p);
  }
  for (const p of parsed) {
    if (p.via === undefined) continue;
    if (p.via === p.dst) problems.push(`entry ${p.n} (dst ${p.dst}) is its own "via"`);
    else if (!byDst.has(p.via)) problems.push(`entry ${p.n} (dst ${p.dst}) has "via": ${p.via}, which is no entry's dst`);
  }
  if (problems.length === 0) {
    // Walk each via chain; a chain that comes back to a host it passed is a cycle.
    for (const p of parsed) {
      const seen = [p.dst];
      let via = p.via;
      while (via !== undefined) {
        if (seen.includes(via)) {
          problems.push(`"via" cycle: ${[...seen, via].join(" → ")}`);
          break;
        }
        seen.push(via);
        via = byDst.get(via)?.via;
      }
      if (problems.length) break;
    }
  }
  if (problems.length) return err(`Inventory ${file} has problems:\n  ${problems.join("\n  ")}`);
  const targetOf = (p: Entry): SshTarget => {
    const hops: SshTarget[] = [];
    let via = p.via;
    while (via !== undefined) {
      const hop = byDst.get(via) as Entry;
      hops.unshift({ host: hop.dst, port: hop.port });
      via = hop.via;
    }
    return { host: p.dst, port: p.port, ...(hops.length ? { via: hops } : {}) };
  };
  return ok(parsed.map((p, index) => ({ index, dst: p.dst, port: p.port, ...(p.via ? { via: p.via } : {}), target: targetOf(p) })));
}
