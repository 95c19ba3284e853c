import { readFileSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import type { Role } from "../consensus/registry.ts";

/** What the agent reports about itself, for `mesh` (waits for ready) and `members` (offline view). */
export interface AgentStatus {
  readonly pid: number;
  readonly phase: "starting" | "meshed" | "ready";
  readonly publicKey?: string;
  readonly meshAddress?: string;
  readonly role?: Role;
  readonly consensus?: string;
  readonly kv: "connected" | "unreachable";
  readonly updatedAt: number;
  readonly startedAt: number;
  readonly lastError?: string;
}

export async function writeStatus(path: string, status: AgentStatus): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(status)}\n`, { mode: 0o644 });
}

export function readStatus(path: string): AgentStatus | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as AgentStatus;
  } catch {
    return undefined;
  }
}
