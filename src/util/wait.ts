/** What `waitUntil` polls: a value when the condition holds; false, undefined or null while not. */
export type Condition<T> = () => T | false | undefined | null | Promise<T | false | undefined | null>;

/**
 * Polls `check` until it returns a value (anything but false, undefined or null), and returns
 * that value; undefined when `timeoutMs` ran out first. `check` runs at once, then every
 * `intervalMs` (both in milliseconds). Bounded in time and, should the clock jump, in count
 * (timeoutMs / intervalMs + 1 checks). A `check` that throws makes this throw.
 */
export async function waitUntil<T>(check: Condition<T>, opts: { timeoutMs: number; intervalMs: number }): Promise<T | undefined> {
  const interval = Math.max(1, opts.intervalMs);
  const until = Date.now() + opts.timeoutMs;
  const maxChecks = Math.ceil(opts.timeoutMs / interval) + 1;
  for (let i = 0; i < maxChecks; i++) {
    const value = await check();
    if (value !== false && value !== undefined && value !== null) return value;
    const left = until - Date.now();
    if (left <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(interval, left)));
  }
  return undefined;
}
