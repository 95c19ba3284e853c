import { Range, type Etcd3, type Watcher } from "etcd3";
import { deadline } from "./client.ts";

/**
 * The key ranges under `root` that leave out the `excluded` prefixes: etcd watches one range
 * per watcher and has no "all but" filter, so a watch of everything but a few prefixes is
 * the complement, as ranges `[start, end)` in etcd's byte order. Each excluded prefix must
 * start with `root` and none may contain another.
 * @throws Error (a bug) when a prefix is outside `root` or nested in another.
 */
export function rangesOutside(root: string, excluded: readonly string[]): Range[] {
  const all = Range.prefix(root);
  const cut = [...excluded].map((p) => Range.prefix(p)).sort((a, b) => Buffer.compare(a.start, b.start));
  const ranges: Range[] = [];
  let start = all.start;
  for (const c of cut) {
    if (!c.start.subarray(0, all.start.length).equals(all.start)) throw new Error(`rangesOutside: ${c.start.toString()} is not under ${root}`);
    if (Buffer.compare(c.start, start) < 0) throw new Error(`rangesOutside: ${c.start.toString()} overlaps another excluded prefix`);
    if (Buffer.compare(start, c.start) < 0) ranges.push(new Range(start, c.start));
    start = c.end;
  }
  if (Buffer.compare(start, all.end) < 0) ranges.push(new Range(start, all.end));
  return ranges;
}

/** What a range watch hands on: every put and delete (with the revision that made it), and its end when etcd cancels it. */
export interface RangeWatchHandlers {
  put(key: string, value: string, revision: bigint): void;
  delete(key: string, revision: bigint): void;
  /** etcd cancelled one of the watchers (e.g. its start revision was compacted): events may have been missed; the watch is dead. Called once. */
  failed(e: unknown): void;
}

/** Watchers of several ranges that act as one: one set of handlers, one cancel. */
export interface RangeWatch {
  cancel(): Promise<void>;
}

/**
 * Watches every range in `ranges` (one etcd watcher each; etcd3 multiplexes them on one gRPC
 * stream) from now on, or from `startRevision` (every change with a revision ≥ it, none missed:
 * etcd3 resumes a watch from the last revision it delivered after a reconnect, and etcd cancels
 * one whose revision was compacted away), feeding one set of handlers; `failed` is called only
 * once this has returned.
 * @throws DeadlineError when a watcher is not created within `ms`, or etcd's error when it
 *   cancels one while the others are being created (those created are cancelled).
 */
export async function watchRanges(client: Etcd3, ranges: readonly Range[], on: RangeWatchHandlers, ms = 3000, startRevision?: bigint): Promise<RangeWatch> {
  const watchers: Watcher[] = [];
  let dead = false;
  let ready = false;
  /** A watcher etcd cancelled while the others were still being created: this call fails with it. */
  let failedEarly: unknown;
  const cancel = async () => {
    dead = true;
    // Each watcher once: those made after a first cancel are cancelled by the next.
    await Promise.all(watchers.splice(0).map((w) => w.cancel().catch(() => undefined)));
  };
  const attach = (w: Watcher) => {
    // Made after the call gave up (another watcher failed): not wanted.
    if (dead) return void w.cancel().catch(() => undefined);
    watchers.push(w);
    w.on("put", (res) => dead || on.put(res.key.toString(), res.value.toString(), BigInt(res.mod_revision)));
    w.on("delete", (res) => dead || on.delete(res.key.toString(), BigInt(res.mod_revision)));
    w.on("error", (e) => {
      if (dead) return;
      void cancel();
      if (ready) on.failed(e);
      else failedEarly = e;
    });
  };
  // All at once: one round trip however many ranges, not one each in turn.
  const watcherOf = (r: Range) => {
    const b = client.watch().inRange(r);
    return startRevision === undefined ? b : b.startRevision(String(startRevision));
  };
  const made = await Promise.allSettled(ranges.map((r) => deadline("etcd watch", ms, watcherOf(r).create()).then(attach)));
  const refused = made.find((m): m is PromiseRejectedResult => m.status === "rejected");
  if (refused || dead) {
    await cancel();
    throw refused ? refused.reason : failedEarly instanceof Error ? failedEarly : new Error(`etcd cancelled a watch while it was being set up: ${String(failedEarly)}`);
  }
  ready = true;
  return { cancel };
}
