/**
 * Debounces and serializes hook runs: changes that arrive within `quietMs` of each other are
 * delivered as one run (but no later than `maxDelayMs` after the first), and a run never starts
 * while another is in progress. A churning cluster therefore costs a bounded number of runs.
 */
export class HookQueue<C> {
  private pending: C[] = [];
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  runs = 0;

  constructor(
    private readonly fire: (changes: C[]) => Promise<void>,
    private readonly quietMs = 1000,
    private readonly maxDelayMs = 5000,
  ) {}

  push(change: C): void {
    if (this.pending.length === 0) this.firstAt = Date.now();
    this.pending.push(change);
    this.arm();
  }

  private arm(): void {
    if (this.running) return;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.quietMs, this.firstAt + this.maxDelayMs - Date.now()));
    this.timer = setTimeout(() => void this.flush(), wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.running || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.running = true;
    this.runs++;
    try {
      await this.fire(batch);
    } finally {
      this.running = false;
      if (this.pending.length > 0) {
        this.firstAt = Date.now();
        this.arm();
      }
    }
  }

  /** Waits (bounded) until nothing is pending or running; for shutdown and tests. */
  async drain(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while ((this.running || this.pending.length > 0) && Date.now() < until) {
      if (!this.running && this.pending.length > 0 && !this.timer) this.arm();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.pending = [];
  }
}
