import type { SshTarget } from "../remote/ssh.ts";
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

/**
 * The original's inventory format — `[{"dst": "1.2.3.4", "port": "2222", "via": "<another dst>"}]`
 * — validated as a whole: every problem names the file and the entry. Unlike the original,
 * `via` works (ProxyJump chains); an unknown `via`, a host that is its own `via`, and cycles
 * are rejected.
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
  const parsed: { dst: string; port: number; via?: string }[] = [];
  doc.forEach((item, i) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      problems.push(`${describe(i, item)} is not an object`);
      return;
    }
    const o = item as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !["dst", "port", "via"].includes(k));
    if (unknown.length) problems.push(`${describe(i, item)} has unknown key(s) ${unknown.join(", ")}`);
    if (typeof o["dst"] !== "string" || !/^[^\s/]+$/.test(o["dst"])) {
      problems.push(`${describe(i, item)} needs "dst": a hostname or IP address`);
      return;
    }
    const rawPort = o["port"] ?? 22;
    const port = typeof rawPort === "number" ? rawPort : typeof rawPort === "string" && /^\d+$/.test(rawPort) ? Number(rawPort) : NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${describe(i, item)} has port ${JSON.stringify(rawPort)}, not a TCP port`);
    const via = o["via"];
    if (via !== undefined && typeof via !== "string") problems.push(`${describe(i, item)} has a "via" that is not a string`);
    parsed.push({ dst: o["dst"], port, ...(typeof via === "string" ? { via } : {}) });
  });
  const byDst = new Map<string, number>();
  parsed.forEach((p, i) => {
    if (byDst.has(p.dst)) problems.push(`entry ${i + 1} repeats dst ${p.dst} (also entry ${(byDst.get(p.dst) ?? 0) + 1}); "via" would be ambiguous`);
    else byDst.set(p.dst, i);
  });
  parsed.forEach((p, i) => {
    if (p.via === undefined) return;
    if (p.via === p.dst) problems.push(`entry ${i + 1} (dst ${p.dst}) is its own "via"`);
    else if (!byDst.has(p.via)) problems.push(`entry ${i + 1} (dst ${p.dst}) has "via": ${p.via}, which is no entry's dst`);
  });
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
        via = parsed[byDst.get(via) as number]?.via;
      }
      if (problems.length) break;
    }
  }
  if (problems.length) return err(`Inventory ${file} has problems:\n  ${problems.join("\n  ")}`);
  const targetOf = (dst: string): SshTarget => {
    const p = parsed[byDst.get(dst) as number]!;
    const hops: SshTarget[] = [];
    let via = p.via;
    while (via !== undefined) {
      const hop = parsed[byDst.get(via) as number]!;
      hops.unshift({ host: hop.dst, port: hop.port });
      via = hop.via;
    }
    return { host: p.dst, port: p.port, ...(hops.length ? { via: hops } : {}) };
  };
  return ok(parsed.map((p, index) => ({ index, dst: p.dst, port: p.port, ...(p.via ? { via: p.via } : {}), target: targetOf(p.dst) })));
}
