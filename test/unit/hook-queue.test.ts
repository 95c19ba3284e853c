import { strict as assert } from "node:assert";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { HookQueue } from "../../src/node/hook-queue.ts";
import { mulberry32 } from "../chaos/prng.ts";

/*
 * The hook queue under node:test's mock timers (setTimeout and Date): the clock moves one
 * millisecond at a time and every promise settles between steps, so a run's start time is
 * exact. The rule checked (from the queue's contract and the design brief's "debounced,
 * serialized"): a run starts at
 *     min(max(last change, end of the previous run) + quiet, max(first change, end of the previous run) + max delay)
 * — quietMs after the last change, but no later than maxDelayMs after the first; changes that
 * arrive during a run wait for its end — never while another runs, and delivers every change
 * exactly once, in order.
 */

const QUIET = 1000;
const MAX = 5000;

interface Run {
  readonly start: number;
  end?: number;
  readonly batch: readonly number[];
}

class Harness {
  readonly runs: Run[] = [];
  readonly pushedAt: number[] = [];
  active = 0;
  maxActive = 0;
  readonly queue: HookQueue<number>;

  /** `duration(i)`: how long the i-th run's hook takes (ms, on the mocked clock). */
  constructor(private readonly duration: (i: number) => number = () => 0) {
    this.queue = new HookQueue<number>(async (batch) => {
      const run: Run = { start: Date.now(), batch: [...batch] };
      const i = this.runs.push(run) - 1;
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      const d = this.duration(i);
      if (d > 0) await new Promise((r) => setTimeout(r, d));
      run.end = Date.now();
      this.active--;
    });
  }

  push(): void {
    this.pushedAt.push(Date.now());
    this.queue.push(this.pushedAt.length - 1);
  }

  /** Moves the clock `ms` milliseconds, one at a time, letting every promise settle. */
  async advance(ms: number): Promise<void> {
    for (let i = 0; i < ms; i++) {
      mock.timers.tick(1);
      await new Promise((r) => setImmediate(r));
    }
  }

  /** The rule above, for every run, with the harness's own record of the pushes. */
  check(): void {
    const delivered = this.runs.flatMap((r) => r.batch);
    assert.deepEqual(delivered, this.pushedAt.map((_, i) => i), "every change exactly once, in order");
    assert.ok(this.maxActive <= 1, "runs never overlap");
    let prevEnd = -Infinity;
    for (const [n, run] of this.runs.entries()) {
      assert.ok(run.batch.length > 0, "no empty run");
      const first = this.pushedAt[run.batch[0] as number] as number;
      const last = this.pushedAt[run.batch[run.batch.length - 1] as number] as number;
      const due = Math.min(Math.max(last, prevEnd) + QUIET, Math.max(first, prevEnd) + MAX);
      assert.equal(run.start, due, `run ${n} (changes pushed at ${run.batch.map((i) => this.pushedAt[i]).join(",")}, previous run ended ${prevEnd})`);
      assert.ok(run.end !== undefined);
      prevEnd = run.end;
    }
  }
}

describe("hook queue (mocked clock)", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 }));
  afterEach(() => mock.timers.reset());

  it("runs once, quietMs after a single change, not a millisecond before", async () => {
    const h = new Harness();
    h.push();
    await h.advance(QUIET - 1);
    assert.equal(h.runs.length, 0);
    await h.advance(1);
    assert.deepEqual(h.runs.map((r) => [r.start, r.batch]), [[QUIET, [0]]]);
    h.check();
  });

  it("a burst within quietMs of each other is one run, quietMs after its last change", async () => {
    const h = new Harness();
    for (let i = 0; i < 4; i++) {
      h.push();
      await h.advance(QUIET - 1);
    }
    await h.advance(QUIET);
    assert.deepEqual(h.runs.map((r) => [r.start, r.batch]), [[3 * (QUIET - 1) + QUIET, [0, 1, 2, 3]]]);
    h.check();
  });

  it("under constant churn, runs every maxDelayMs: a bounded number of runs", async () => {
    const h = new Harness();
    for (let t = 0; t < 20_000; t += 100) {
      h.push();
      await h.advance(100);
    }
    await h.advance(MAX);
    assert.deepEqual(h.runs.slice(0, 4).map((r) => r.start), [5000, 10_000, 15_000, 20_000]);
    assert.equal(h.runs.length, 4);
    h.check();
  });

  it("serializes: changes during a long run wait for it, then go as one run quietMs after it ends", async () => {
    const h = new Harness((i) => (i === 0 ? 7000 : 0));
    h.push();
    await h.advance(QUIET + 10);
    assert.equal(h.runs.length, 1);
    // The first run lasts 7 s: changes keep arriving; past maxDelayMs none may start meanwhile.
    for (let i = 0; i < 10; i++) {
      h.push();
      await h.advance(600);
    }
    assert.equal(h.runs.length, 1, "no run while one is in progress");
    await h.advance(10_000);
    assert.deepEqual(
      h.runs.map((r) => [r.start, r.end, r.batch.length]),
      [
        [QUIET, QUIET + 7000, 1],
        [QUIET + 7000 + QUIET, QUIET + 7000 + QUIET, 10],
      ],
    );
    h.check();
  });

  it("random schedules of changes and hook durations: the rule holds for every run", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      mock.timers.reset();
      mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
      const rand = mulberry32(seed);
      const h = new Harness(() => (rand() < 0.5 ? 0 : Math.floor(rand() * 4000)));
      for (let t = 0; t < 15_000; ) {
        const burst = rand() < 0.3 ? 1 + Math.floor(rand() * 5) : 1;
        for (let b = 0; b < burst; b++) h.push();
        const gap = rand() < 0.5 ? Math.floor(rand() * QUIET) : Math.floor(rand() * 3 * QUIET);
        await h.advance(gap + 1);
        t += gap + 1;
      }
      await h.advance(MAX + 4000 + QUIET);
      assert.equal(h.active, 0, `seed ${seed}: still running`);
      h.check();
      assert.ok(h.runs.length > 1, `seed ${seed}: ${h.runs.length} run(s)`);
    }
  });

  it("close drops what is pending: no run after it", async () => {
    const h = new Harness();
    h.push();
    await h.advance(QUIET / 2);
    h.queue.close();
    await h.advance(MAX * 2);
    assert.equal(h.runs.length, 0);
  });
});

describe("hook queue (real clock)", () => {
  it("drain waits until every change was delivered", async () => {
    const batches: number[][] = [];
    const q = new HookQueue<number>(
      async (b) => {
        batches.push(b);
        await new Promise((r) => setTimeout(r, 30));
      },
      20,
      100,
    );
    q.push(1);
    q.push(2);
    setTimeout(() => q.push(3), 35);
    await new Promise((r) => setTimeout(r, 40));
    await q.drain(5000);
    assert.deepEqual(batches.flat(), [1, 2, 3]);
    assert.equal(q.runs, batches.length);
  });
});
