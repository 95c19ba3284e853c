import { appendFileSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { FlatMapping } from "./flatten.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/** One change made to the local cache while the cluster could not be reached. */
export interface PendingOp {
  readonly key: string;
  /** `null` deletes the key. */
  readonly value: string | null;
  readonly at: number;
}

/** The keys `after` changed relative to `before`, as operations. */
export function diffOps(before: FlatMapping, after: FlatMapping, at = Date.now()): PendingOp[] {
  const ops: PendingOp[] = [];
  for (const [k, v] of Object.entries(after)) if (before[k] !== v) ops.push({ key: k, value: v, at });
  for (const k of Object.keys(before)) if (!(k in after)) ops.push({ key: k, value: null, at });
  return ops;
}

/**
 * Changes a member made while its cluster was unreachable, kept beside the mutable config
 * (`pending_config.jsonl`, 0600) so the agent can replay them — deletes included — once the
 * KV answers again, instead of letting the cluster's copy silently win over them.
 */
export class PendingChanges {
  constructor(readonly path: string) {}

  append(ops: readonly PendingOp[]): void {
    if (ops.length === 0) return;
    makePrivateDir(dirname(this.path));
    appendFileSync(this.path, ops.map((o) => `${JSON.stringify(o)}\n`).join(""), { mode: 0o600 });
  }

  /** Takes the journal for replay: moved aside first so changes appended meanwhile are kept. */
  take(): { ops: PendingOp[]; done: () => void; restore: () => void } | undefined {
    const taken = `${this.path}.replaying`;
    try {
      renameSync(this.path, taken);
    } catch {
      return undefined;
    }
    const ops: PendingOp[] = [];
    for (const line of readFileSync(taken, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        ops.push(JSON.parse(line) as PendingOp);
      } catch {
        /* a torn last line from a crash: skip it */
      }
    }
    return {
      ops,
      done: () => rmSync(taken, { force: true }),
      restore: () => {
        // Put the ops back in front of anything appended since.
        let later = "";
        try {
          later = readFileSync(this.path, "utf8");
        } catch {
          /* none */
        }
        appendFileSync(taken, later, { mode: 0o600 });
        renameSync(taken, this.path);
      },
    };
  }
}

export function applyOps(mapping: FlatMapping, ops: readonly PendingOp[]): FlatMapping {
  for (const op of ops) {
    if (op.value === null) delete mapping[op.key];
    else mapping[op.key] = op.value;
  }
  return mapping;
}
