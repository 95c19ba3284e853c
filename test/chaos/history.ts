/**
 * The chaos run's recorded history, kept pure so it can be unit-tested: the workload clients'
 * JSON lines (test/chaos/workload-client.ts) and the CLI's `config set` / `config get` runs
 * turned into operations for the linearizability checker, the "every acknowledged write is
 * present" check, and the stall figures.
 *
 * How an answer counts (an operation may have taken effect unless it certainly did not):
 * - a write without an answer, or with an error (a deadline, a dropped connection, a killed
 *   CLI), is "unknown": etcd may have applied it;
 * - `config set` that queued its change because the KV did not answer is "unknown" too: the
 *   agent pushes the change later;
 * - a read with an error is "fail" (no effect, nothing learnt); so is a `config get` answered
 *   from the member's cached copy (it says so on stderr): a cached copy may be stale by design,
 *   those are counted apart (`cachedReads`) rather than checked.
 */
import { longestStallMs } from "../../bench/lib/stall.ts";
import type { Operation } from "./linearizability.ts";

/** One operation as recorded, before numbering. */
export interface RecordedOp {
  /** The recorder's own id (e.g. "n1.0.7", "n2/cli.3"). */
  readonly ref: string;
  /** Member and interface, e.g. "n1/etcd3", "n1/cli". */
  readonly process: string;
  readonly key: string;
  readonly f: "read" | "write";
  readonly value?: string | null;
  readonly invoke: number;
  readonly complete?: number;
  readonly outcome: Operation["outcome"];
  /** Why it failed or is unknown, when an answer said so. */
  readonly error?: string;
}

interface Invocation {
  id: string;
  f: "read" | "write";
  key: string;
  value?: string;
  t: number;
}

/**
 * Parses one member's workload log (lines that are not JSON objects — the lab's own headers,
 * stderr — are skipped, as is a torn last line). `process` names the client, e.g. "n1/etcd3".
 * Returns the operations and the completion times of every answered one (the member's local
 * endpoint answering: reads and writes alike), sorted.
 */
export function parseWorkloadLog(text: string, process: string): { ops: RecordedOp[]; answers: number[] } {
  const invoked = new Map<string, Invocation>();
  const done = new Map<string, { ok: boolean; t: number; value?: string | null; err?: string }>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let o: { e?: string; id?: string; f?: string; key?: string; value?: string | null; t?: number; err?: string };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      continue;
    }
    if (typeof o.id !== "string" || typeof o.t !== "number") continue;
    if (o.e === "invoke" && (o.f === "read" || o.f === "write") && typeof o.key === "string") {
      invoked.set(o.id, { id: o.id, f: o.f, key: o.key, ...(typeof o.value === "string" ? { value: o.value } : {}), t: o.t });
    } else if (o.e === "ok") {
      done.set(o.id, { ok: true, t: o.t, ...(o.value !== undefined ? { value: o.value } : {}) });
    } else if (o.e === "err") {
      done.set(o.id, { ok: false, t: o.t, ...(o.err !== undefined ? { err: o.err } : {}) });
    }
  }
  const ops: RecordedOp[] = [];
  const answers: number[] = [];
  for (const inv of invoked.values()) {
    const d = done.get(inv.id);
    const base = { ref: inv.id, process, key: inv.key, f: inv.f, invoke: inv.t };
    if (d?.ok) {
      answers.push(d.t);
      ops.push({ ...base, value: inv.f === "write" ? inv.value! : (d.value ?? null), complete: d.t, outcome: "ok" });
    } else if (inv.f === "write") {
      ops.push({ ...base, value: inv.value!, outcome: "unknown", ...(d?.err ? { error: d.err } : { error: "no answer" }) });
    } else {
      ops.push({ ...base, outcome: d ? "fail" : "unknown", ...(d?.err ? { error: d.err } : {}) });
    }
  }
  answers.sort((a, b) => a - b);
  return { ops, answers };
}

/** What one CLI run printed. */
export interface CliOutcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `config get` of a key that is not set (src/util/errors.ts EXIT_KEY_NOT_SET). */
const EXIT_KEY_NOT_SET = 66;
/** The warnings of src/node/shared-config.ts and src/ops/cluster/local.ts: the KV did not answer. */
const QUEUED = /cluster KV is unreachable from this member: the change is in the local cache and queued/;
const CACHED = /cluster KV did not answer on this member: this is the member's cached copy/;

/**
 * One `config set KEY VALUE` or `config get KEY` run as an operation (module doc for how the
 * answer counts). `cached` is true for a read answered from the member's cached copy.
 */
export function cliOperation(
  o: { ref: string; process: string; key: string; f: "read" | "write"; value?: string; invoke: number; complete: number },
  r: CliOutcome,
): { op: RecordedOp; cached: boolean } {
  const base = { ref: o.ref, process: o.process, key: o.key, f: o.f, invoke: o.invoke };
  const why = () => r.stderr.trim().split("\n").pop()?.slice(0, 200) ?? "";
  if (o.f === "write") {
    if (r.exitCode === 0 && !QUEUED.test(r.stderr)) return { op: { ...base, value: o.value!, complete: o.complete, outcome: "ok" }, cached: false };
    return { op: { ...base, value: o.value!, outcome: "unknown", error: r.exitCode === 0 ? "queued in the local cache" : `exit ${r.exitCode}: ${why()}` }, cached: false };
  }
  if (CACHED.test(r.stderr)) return { op: { ...base, outcome: "fail", error: "answered from the cached copy" }, cached: true };
  if (r.exitCode === 0) return { op: { ...base, value: r.stdout.replace(/\n$/, ""), complete: o.complete, outcome: "ok" }, cached: false };
  if (r.exitCode === EXIT_KEY_NOT_SET) return { op: { ...base, value: null, complete: o.complete, outcome: "ok" }, cached: false };
  return { op: { ...base, outcome: "fail", error: `exit ${r.exitCode}: ${why()}` }, cached: false };
}

/**
 * Numbers recorded operations for the checker (ids = index), keeping the refs beside them for
 * reports. Operations on keys under `oncePrefix` (each written once, checked by `lostWrites`)
 * are left out.
 */
export function toOperations(recorded: readonly RecordedOp[], oncePrefix: string): { ops: Operation[]; refs: string[] } {
  const ops: Operation[] = [];
  const refs: string[] = [];
  for (const r of recorded) {
    if (r.key.startsWith(oncePrefix)) continue;
    const id = ops.length;
    refs.push(r.ref);
    ops.push({
      id,
      process: r.process,
      key: r.key,
      f: r.f,
      outcome: r.outcome,
      invoke: r.invoke,
      ...(r.value !== undefined ? { value: r.value } : {}),
      ...(r.complete !== undefined ? { complete: r.complete } : {}),
    });
  }
  return { ops, refs };
}

/**
 * The "every acknowledged write is present" check over the keys written once (under
 * `oncePrefix`): `present` is every key under the prefix read at the end. Lost: acknowledged
 * writes whose key is missing or holds another value. Unexpected: keys present that no write
 * (acknowledged or not) of that value was made for.
 */
export function lostWrites(
  recorded: readonly RecordedOp[],
  oncePrefix: string,
  present: Readonly<Record<string, string>>,
): { acknowledged: number; unknown: number; lost: RecordedOp[]; unexpected: string[] } {
  const writes = recorded.filter((r) => r.f === "write" && r.key.startsWith(oncePrefix));
  const acked = writes.filter((w) => w.outcome === "ok");
  const lost = acked.filter((w) => present[w.key] !== w.value);
  const made = new Map(writes.map((w) => [w.key, w.value]));
  const unexpected = Object.entries(present)
    .filter(([k, v]) => k.startsWith(oncePrefix) && made.get(k) !== v)
    .map(([k]) => k);
  return { acknowledged: acked.length, unknown: writes.length - acked.length, lost, unexpected };
}

/** A time during which a member's local endpoint was expected to answer (its side had quorum). */
export interface StallWindow {
  readonly member: string;
  readonly kind: string;
  readonly from: number;
  readonly to: number;
}

/**
 * The longest time in ms each member's endpoint did not answer within each of its windows, the
 * worst per fault kind and member: the largest gap between consecutive answers (see
 * bench/lib/stall.ts longestStallMs; a member that answered before the window counts as
 * answering at its start). `answers`: each member's answer times, sorted. A window without any
 * answer before or in it has no figure (undefined is skipped).
 */
export function stallsByKind(answers: ReadonlyMap<string, readonly number[]>, windows: readonly StallWindow[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const w of windows) {
    const ends = answers.get(w.member) ?? [];
    const ms = longestStallMs(
      ends.map((end) => ({ op: "any", start: end, end, ok: true })),
      "any",
      w.from,
      w.to,
    );
    if (ms === undefined) continue;
    let byMember = out.get(w.kind);
    if (!byMember) out.set(w.kind, (byMember = new Map()));
    byMember.set(w.member, Math.max(byMember.get(w.member) ?? 0, ms));
  }
  return out;
}
