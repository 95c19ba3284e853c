/**
 * Latency summaries for the benchmarks: nearest-rank percentiles and the share of samples
 * within a bound. Pure: no clocks, no I/O.
 */

/**
 * The nearest-rank percentile `p` (0 < p ≤ 100) of `xs`: the smallest sample with at least
 * p % of the samples at or below it (p50 of [1,2,3,4] is 2, p99 of 1000 samples is the 990th).
 * Undefined for no samples. @throws RangeError when p is not in (0, 100].
 */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (xs.length === 0) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

/** Share (0..1) of `expected` samples at or below `boundMs`; missing samples (never arrived) count as beyond it. */
export function fractionWithin(xs: readonly number[], boundMs: number, expected = xs.length): number {
  if (expected <= 0) return 1;
  return xs.filter((x) => x <= boundMs).length / expected;
}

export interface LatencySummary {
  /** Samples that arrived. */
  readonly n: number;
  /** Samples that never arrived (expected − n). */
  readonly missing: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Share of the expected samples within 1 s. */
  readonly within1s: number;
}

/** p50/p99/max (ms, rounded to 0.1) and the share within 1 s, of `expected` samples of which `xs` arrived. */
export function summarize(xs: readonly number[], expected = xs.length): LatencySummary {
  const r = (v: number | undefined) => (v === undefined ? null : Math.round(v * 10) / 10);
  return {
    n: xs.length,
    missing: Math.max(0, expected - xs.length),
    p50Ms: r(percentile(xs, 50)),
    p99Ms: r(percentile(xs, 99)),
    maxMs: r(xs.length === 0 ? undefined : xs.reduce((a, b) => Math.max(a, b), -Infinity)),
    within1s: Math.round(fractionWithin(xs, 1000, expected) * 10_000) / 10_000,
  };
}
