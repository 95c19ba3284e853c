import { errorMessage } from "../../util/errors.ts";
import type { Logger } from "../../util/log.ts";
import { graphKey, type MapGraph } from "./graph.ts";

/** Where the map's graph comes from: the cluster KV (source.ts), or a stand-in in tests. */
export interface GraphSource {
  /** The graph now. Rejects when the KV does not answer (then `reset` is called). */
  read(): Promise<MapGraph>;
  /**
   * Calls `changed` for every change that can alter the graph, until the returned stop is
   * called; `failed` when the watch died (etcd cancelled it). Rejects when it cannot start.
   */
  watch(changed: () => void, failed: (e: unknown) => void): Promise<() => void>;
  /** Drops the connection: the next read or watch opens a new one. */
  reset(): void;
}

/** What a page that follows the map receives: a new graph, or why there is none right now. */
export type FeedEvent = { readonly type: "graph"; readonly graph: MapGraph } | { readonly type: "problem"; readonly message: string };

export interface FeedOptions {
  /** Reads at most this often however fast the KV changes (link reports of many members), ms. */
  readonly minIntervalMs?: number;
  /** Reads this often while anyone follows, for what no watch sees (etcd's leader), ms. */
  readonly pollMs?: number;
  /** After a failed read or a dead watch, tries again after this long, ms. */
  readonly retryMs?: number;
  /** With no one following, the KV connection is closed after this long, ms. */
  readonly idleMs?: number;
  readonly now?: () => number;
}

/**
 * The graph for the map's server: `current()` for one answer, `subscribe` for the live page.
 * While anyone follows, it watches the KV and reads again on every change (at most once per
 * `minIntervalMs`, and every `pollMs` for roles), and passes a graph on only when it differs
 * from the last one (graphKey: uptimes ticking on is no change). A failed read is passed on
 * as a problem once, and retried. With nobody following, it watches nothing and closes its
 * connection after `idleMs`: a member whose map nobody looks at does no work for it.
 * Never throws from a timer or a watch callback.
 */
export class GraphFeed {
  private readonly subscribers = new Set<(e: FeedEvent) => void>();
  private last: { graph: MapGraph; at: number; key: string } | undefined;
  private lastEvent: FeedEvent | undefined;
  private reading: Promise<MapGraph> | undefined;
  private again = false;
  private lastReadAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private readonly retries = new Map<"read" | "watch", NodeJS.Timeout>();
  private stopWatch: (() => void) | undefined;
  private watching = false;
  private closed = false;
  private readonly o: Required<FeedOptions>;

  constructor(
    private readonly source: GraphSource,
    private readonly log: Logger,
    o: FeedOptions = {},
  ) {
    this.o = { minIntervalMs: 500, pollMs: 5000, retryMs: 2000, idleMs: 30_000, now: Date.now, ...o };
  }

  /** How many pages follow the map now. */
  get followers(): number {
    return this.subscribers.size;
  }

  /**
   * The graph now: a read of the KV, shared with one already under way, or the last one when
   * it is younger than `minIntervalMs`.
   * @throws what the read throws (the KV does not answer).
   */
  async current(): Promise<MapGraph> {
    if (this.reading) return this.reading;
    if (this.last && this.o.now() - this.last.at < this.o.minIntervalMs) return this.last.graph;
    return this.read();
  }

  /**
   * Follows the map: `send` gets the graph now (or the problem that keeps it away) and again
   * whenever it changes. Returns the function that stops following. `send` must not throw
   * (a throw is caught and that follower dropped).
   */
  subscribe(send: (e: FeedEvent) => void): () => void {
    if (this.closed) throw new Error("the map's feed is closed");
    this.subscribers.add(send);
    clearTimeout(this.idle);
    if (this.last && this.o.now() - this.last.at < this.o.pollMs) this.deliver(send, { type: "graph", graph: this.last.graph });
    else if (this.lastEvent?.type === "problem") this.deliver(send, this.lastEvent);
    if (this.subscribers.size === 1) this.start();
    this.schedule(true);
    return () => this.unsubscribe(send);
  }

  /** Stops everything: followers are dropped, the connection closed. */
  close(): void {
    this.closed = true;
    this.subscribers.clear();
    this.stop();
    clearTimeout(this.idle);
    this.source.reset();
  }

  private unsubscribe(send: (e: FeedEvent) => void): void {
    if (!this.subscribers.delete(send) || this.subscribers.size > 0) return;
    this.stop();
    this.armIdle();
  }

  /** With nobody following, the connection is closed `idleMs` after the last use (a read, a follower leaving). */
  private armIdle(): void {
    clearTimeout(this.idle);
    if (this.subscribers.size > 0 || this.closed) return;
    this.idle = setTimeout(() => {
      if (this.subscribers.size === 0 && !this.reading) this.source.reset();
    }, this.o.idleMs);
    this.idle.unref?.();
  }

  /** The connection was dropped: a watch on it is dead too, so it is started again on the next one. */
  private rewatch(): void {
    if (!this.watching) return;
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.watching = false;
    this.later("watch", () => void this.startWatch());
  }

  private start(): void {
    this.poll = setInterval(() => this.schedule(), this.o.pollMs);
    this.poll.unref?.();
    void this.startWatch();
  }

  private stop(): void {
    clearInterval(this.poll);
    clearTimeout(this.timer);
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    this.poll = this.timer = undefined;
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.watching = false;
  }

  private async startWatch(): Promise<void> {
    if (this.watching || this.subscribers.size === 0) return;
    this.watching = true;
    let stop: (() => void) | undefined;
    try {
      stop = await this.source.watch(
        () => this.schedule(),
        (e) => {
          if (this.stopWatch !== stop) return;
          this.log.debug(`map: the KV watch ended (${errorMessage(e)}); watching again`);
          this.stopWatch?.();
          this.stopWatch = undefined;
          this.watching = false;
          this.later("watch", () => void this.startWatch());
        },
      );
    } catch (e) {
      this.watching = false;
      this.log.debug(`map: cannot watch the KV (${errorMessage(e)}); trying again`);
      this.source.reset();
      this.later("watch", () => void this.startWatch());
      return;
    }
    if (this.subscribers.size === 0 || !this.watching) stop();
    else this.stopWatch = stop;
    // Changes between the read that was shown and the watch's start are read now.
    this.schedule();
  }

  /** `fn` after `retryMs`, once per kind however often asked, and only while anyone follows. */
  private later(kind: "read" | "watch", fn: () => void): void {
    if (this.subscribers.size === 0 || this.retries.has(kind)) return;
    const t = setTimeout(() => {
      this.retries.delete(kind);
      fn();
    }, this.o.retryMs);
    t.unref?.();
    this.retries.set(kind, t);
  }

  /** A read soon: at once when none was made for `minIntervalMs`, else when that has passed. */
  private schedule(now = false): void {
    if (this.subscribers.size === 0) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const wait = now ? 0 : Math.max(0, this.lastReadAt + this.o.minIntervalMs - this.o.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.read().catch(() => undefined);
    }, wait);
    this.timer.unref?.();
  }

  private read(): Promise<MapGraph> {
    this.lastReadAt = this.o.now();
    const p = this.source.read();
    this.reading = p;
    p.then(
      (graph) => {
        this.reading = undefined;
        const key = graphKey(graph);
        const changed = this.last?.key !== key || this.lastEvent?.type !== "graph";
        this.last = { graph, at: this.o.now(), key };
        if (changed) this.publish({ type: "graph", graph });
        this.afterRead();
      },
      (e: unknown) => {
        this.reading = undefined;
        this.source.reset();
        this.rewatch();
        const message = `The cluster KV does not answer on this member (${errorMessage(e)}); the map shows the last state it read, and tries again.`;
        if (this.lastEvent?.type !== "problem" || this.lastEvent.message !== message) this.publish({ type: "problem", message });
        this.later("read", () => this.schedule(true));
        this.afterRead();
      },
    );
    return p;
  }

  private afterRead(): void {
    this.armIdle();
    if (this.again) {
      this.again = false;
      this.schedule();
    }
  }

  private publish(e: FeedEvent): void {
    this.lastEvent = e;
    for (const send of [...this.subscribers]) this.deliver(send, e);
  }

  private deliver(send: (e: FeedEvent) => void, e: FeedEvent): void {
    try {
      send(e);
    } catch (err) {
      this.log.debug(`map: a follower could not be sent an update (${errorMessage(err)}); dropped`);
      this.unsubscribe(send);
    }
  }
}
