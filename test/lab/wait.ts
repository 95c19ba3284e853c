export interface WaitOptions {
  timeoutMs: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
}

export type Ready<T> = Exclude<T, false | null | undefined>;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Polls `fn` until it returns something other than false/null/undefined, and returns that.
 * A throw counts as "not yet". Bounded by time, including an attempt that hangs: each attempt
 * only gets what is left of the deadline. On timeout the error names `label` and the last
 * reason, so a failing test says what it was waiting for instead of just "timeout".
 */
export async function waitFor<T>(label: string, fn: () => T | Promise<T>, opts: WaitOptions): Promise<Ready<T>> {
  const interval = Math.max(1, opts.intervalMs ?? 100);
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  let last = "never attempted";
  /** The reason of the last attempt that finished: the last one may still be running at the deadline. */
  let lastFinished: string | undefined;
  let attempts = 0;
  // The count bound is a backstop in case the clock misbehaves; time is the real bound.
  const maxAttempts = Math.ceil(opts.timeoutMs / interval) + 2;
  while (attempts < maxAttempts) {
    attempts++;
    const left = deadline - Date.now();
    if (left <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        Promise.resolve().then(fn),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`attempt still running after ${left} ms`)), left);
        }),
      ]);
      if (value !== false && value !== null && value !== undefined) return value as Ready<T>;
      last = lastFinished = `returned ${String(value)}`;
    } catch (e) {
      last = describe(e);
      if (!/^attempt still running after/.test(last)) lastFinished = last;
    } finally {
      clearTimeout(timer);
    }
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
  const before = lastFinished !== undefined && lastFinished !== last ? `; the last attempt that finished: ${lastFinished}` : "";
  throw new Error(`timed out after ${Date.now() - start} ms (${attempts} attempts) waiting for ${label}; last: ${last}${before}`);
}
