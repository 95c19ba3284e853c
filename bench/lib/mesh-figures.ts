/**
 * The figures of bench/mesh-throughput.ts, kept pure so they can be unit-tested: what iperf3
 * and ping print, and the mesh-to-direct ratios.
 */

/** One iperf3 client run (`iperf3 -c … -J`): received throughput and the sender's retransmits. */
export interface IperfResult {
  /** Bits per second the receiver got (end.sum_received), the figure iperf3 itself reports last. */
  readonly bitsPerSecond: number;
  /** TCP retransmits counted by the sender (end.sum_sent.retransmits); undefined if not given. */
  readonly retransmits: number | undefined;
  readonly seconds: number;
}

/**
 * Parses the JSON iperf3 prints with `-J`. Throws with iperf3's own message when the run failed
 * (it then prints {"error": "..."} with an empty "end"), or when the text is not iperf3 JSON.
 */
export function parseIperf3(text: string): IperfResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`iperf3 did not print JSON: ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const d = doc as { error?: unknown; end?: { sum_received?: Record<string, unknown>; sum_sent?: Record<string, unknown> } };
  if (typeof d.error === "string") throw new Error(`iperf3: ${d.error}`);
  const recv = d.end?.sum_received;
  const bps = recv?.["bits_per_second"];
  if (typeof bps !== "number" || !Number.isFinite(bps)) throw new Error("iperf3 JSON has no end.sum_received.bits_per_second");
  const rt = d.end?.sum_sent?.["retransmits"];
  const secs = recv?.["seconds"];
  return { bitsPerSecond: bps, retransmits: typeof rt === "number" ? rt : undefined, seconds: typeof secs === "number" ? secs : 0 };
}

/**
 * The round-trip times, in ms, of the replies in `ping` output (iputils: "… time=0.045 ms" per
 * reply; "time<1 ms" some builds print for sub-ms replies counts as 1). Lost packets have no line.
 */
export function parsePingRtts(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/\btime([=<])([\d.]+) ?ms\b/g)) out.push(Number(m[2]));
  return out;
}

/** How many replies were lost: "N packets transmitted, M received" → N − M; undefined when absent. */
export function pingLoss(text: string): number | undefined {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  return m ? Number(m[1]) - Number(m[2]) : undefined;
}

/**
 * mesh / direct with 2 decimals (throughput: below 1 means the mesh is slower; latency: above 1
 * means it adds delay). Undefined when either figure is missing or the direct one is 0.
 */
export function ratio(mesh: number | undefined, direct: number | undefined): number | undefined {
  if (mesh === undefined || direct === undefined || !(direct > 0) || !Number.isFinite(mesh)) return undefined;
  return Math.round((mesh / direct) * 100) / 100;
}

/** Bits per second as Mbit/s with one decimal. */
export const mbit = (bps: number) => Math.round(bps / 1e5) / 10;
