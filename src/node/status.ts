import { readFileSync, statSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import type { Role } from "../consensus/registry.ts";
import type { NodePaths } from "./paths.ts";
import { makePrivateDir } from "../util/private-dir.ts";

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
  /** Which build of raptiformica the agent runs (see buildId). */
  readonly build?: string;
}

/**
 * Identifies a build of the script a process runs (mtime and size; rsync and tar keep the
 * mtime): `mesh` restarts an agent whose build differs from the installed one, so `slave`
 * again — the update path — also updates the running agent.
 */
export function buildId(script: string | undefined): string | undefined {
  if (!script) return undefined;
  try {
    const st = statSync(script);
    return `${Math.round(st.mtimeMs)}-${st.size}`;
  } catch {
    return undefined;
  }
}

export async function writeStatus(path: string, status: AgentStatus): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(status)}\n`, { mode: 0o644 });
}

/** The agent's status file, best effort: a failed write is not an error of the agent. */
export async function writeStatusQuietly(node: NodePaths, status: AgentStatus): Promise<void> {
  try {
    makePrivateDir(node.runDir);
    await writeStatus(node.status, status);
  } catch {
    /* status is best effort */
  }
}

export function readStatus(path: string): AgentStatus | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as AgentStatus;
  } catch {
    return undefined;
  }
}
