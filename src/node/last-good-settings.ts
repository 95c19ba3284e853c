import { readFileSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import type { FlatMapping } from "../config/flatten.ts";
import { DEFAULT_SETTINGS, clusterSettings, type ClusterSettings } from "../consensus/settings.ts";
import type { NodePaths } from "./paths.ts";

/**
 * The cluster settings this member last ran with (`<cache>/node/settings.json`), or undefined
 * when there are none yet or the file is unreadable. A bad value in the shared config falls
 * back to these, also across agent restarts (the local cache mirrors the KV, bad value and all).
 * Only whole numbers of the known fields are taken; anything else in the file is ignored.
 */
export function readLastGoodSettings(path: string): ClusterSettings | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const out: Record<string, number> = {};
  for (const [field, fallback] of Object.entries(DEFAULT_SETTINGS)) {
    const v = (parsed as Record<string, unknown>)[field];
    out[field] = typeof v === "number" && Number.isInteger(v) ? v : (fallback as number);
  }
  return out as unknown as ClusterSettings;
}

/** Writes the settings atomically (temp file and rename), so a crash never leaves half a file. */
export async function writeLastGoodSettings(path: string, settings: ClusterSettings): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(settings)}\n`, { mode: 0o644 });
}

export function sameSettings(a: ClusterSettings | undefined, b: ClusterSettings): boolean {
  return a !== undefined && (Object.keys(b) as (keyof ClusterSettings)[]).every((k) => a[k] === b[k]);
}

/**
 * The cluster settings a command on this member should use: those in `mapping`, with a bad
 * value replaced by what the agent last ran with (else the default), as the agent itself does.
 */
export function memberSettings(mapping: FlatMapping, node: NodePaths): ClusterSettings {
  return clusterSettings(mapping, readLastGoodSettings(node.lastGoodSettings));
}
