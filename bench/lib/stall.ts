/**
 * The stall figure of bench/proxy-stall.ts, kept pure so it can be unit-tested.
 */

/** One probe operation: kind, start and end in epoch ms, and whether it succeeded. */
export interface ProbeOp {
  readonly op: string;
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
}

/** Parses etcdctl-prober.sh output ("<op> <start ms> <end ms> <exit code>" per line); other lines are skipped. */
export function parseProbeLog(text: string): ProbeOp[] {
  const out: ProbeOp[] = [];
  for (const line of text.split("\n")) {
    const m = /^(put|get) (\d+) (\d+) (\d+)$/.exec(line.trim());
    if (m) out.push({ op: m[1] as string, start: Number(m[2]), end: Number(m[3]), ok: m[4] === "0" });
  }
  return out;
}

/**
 * The longest time, in ms, within [from, to] during which operations of kind `op` could not
 * complete: the largest gap between the ends of consecutive successful operations, counting
 * `from` as a success when one happened before it (the endpoint was answering then) and `to`
 * as the end when none came after the last one. Undefined when there was no success at all
 * (the figure would be meaningless). A healthy endpoint's figure is one operation's latency
 * plus the prober's own cadence (~0.1 s for etcdctl processes).
 */
export function longestStallMs(ops: readonly ProbeOp[], op: string, from: number, to: number): number | undefined {
  const ends = ops.filter((o) => o.op === op && o.ok).map((o) => o.end).sort((a, b) => a - b);
  if (ends.length === 0) return undefined;
  const before = ends.filter((e) => e <= from);
  const inside = ends.filter((e) => e > from && e <= to);
  let prev = before.length > 0 ? from : (inside[0] as number | undefined);
  if (prev === undefined) return undefined;
  let worst = 0;
  for (const e of inside) {
    worst = Math.max(worst, e - prev);
    prev = e;
  }
  return Math.max(worst, to - prev);
}
