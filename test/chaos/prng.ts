/**
 * The seeded pseudo-random numbers of the chaos run: the same seed gives the same fault schedule
 * and the same operation mix, so a run can be replayed with `--seed`.
 */

/** mulberry32: a 32-bit state generator, uniform in [0, 1). Good enough for schedules, not for secrets. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for one stream (`label`, e.g. a member's client) derived from the run's seed (FNV-1a over the label). */
export function seedFor(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A uniformly random integer in [min, max] (both included). */
export function intBetween(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

/** A uniformly random element. @throws Error for an empty list. */
export function pick<T>(rand: () => number, xs: readonly T[]): T {
  if (xs.length === 0) throw new Error("pick from an empty list");
  return xs[Math.floor(rand() * xs.length)]!;
}
