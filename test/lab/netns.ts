/**
 * Thin helpers over iproute2 and /proc for the lab. Every `ip` call is an argv array; batch
 * input only ever contains names and addresses the lab generated itself.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { run } from "../../src/util/exec.ts";
import { sleep } from "./wait.ts";

/** Where `ip netns add` pins namespaces (iproute2's NETNS_RUN_DIR). */
export const NETNS_RUN_DIR = "/run/netns";
const IP_TIMEOUT_MS = 30_000;

export async function ip(args: readonly string[], input?: string): Promise<string> {
  const r = await run("ip", args, { input, timeoutMs: IP_TIMEOUT_MS });
  if (r.exitCode !== 0) {
    const why = r.failedToStart ?? (r.timedOut ? `timed out after ${IP_TIMEOUT_MS} ms` : `exit ${r.exitCode}`);
    throw new Error(`ip ${args.join(" ")} failed (${why}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/**
 * One `ip` process for many commands: spawning ip per command is what makes naive labs slow.
 * With `ns`, every line runs in that namespace. Without `force` the batch stops at the first
 * failing line and the error says which one.
 */
export async function ipBatch(lines: readonly string[], opts: { ns?: string; force?: boolean } = {}): Promise<void> {
  if (lines.length === 0) return;
  const args = [...(opts.ns ? ["-n", opts.ns] : []), ...(opts.force ? ["-force"] : []), "-batch", "-"];
  try {
    await ip(args, lines.join("\n") + "\n");
  } catch (e) {
    const m = /Command failed -:(\d+)/.exec(e instanceof Error ? e.message : "");
    const line = m ? lines[Number(m[1]) - 1] : undefined;
    throw new Error(`${e instanceof Error ? e.message : String(e)}${line ? `\n  failing line: ${line}` : ""}`);
  }
}

export async function listNamespaces(): Promise<string[]> {
  // Lines look like "name" or "name (id: 3)".
  return (await ip(["netns", "list"]))
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "");
}

/** The namespace's inode as it appears in /proc/PID/ns/net ("net:[INODE]"), if the name exists. */
function namespaceInode(ns: string): string | undefined {
  try {
    return statSync(`${NETNS_RUN_DIR}/${ns}`, { bigint: true }).ino.toString();
  } catch {
    return undefined;
  }
}

/**
 * Pids of every process living in any of the namespaces, found in one pass over /proc. Same
 * rule as `ip netns pids` (compare the net namespace inode) without one `ip` per namespace.
 */
export function pidsInNamespaces(namespaces: readonly string[]): Map<string, number[]> {
  const byInode = new Map<string, string>();
  for (const ns of namespaces) {
    const ino = namespaceInode(ns);
    if (ino !== undefined) byInode.set(ino, ns);
  }
  return pidsByNetInode(byInode);
}

/**
 * Pids of every process whose network namespace has one of the inodes of `byInode` (inode, as
 * /proc/PID/ns/net names it → the name to file it under), in one pass over /proc; this
 * process left out. Works where /run/netns does not hold the namespace (another mount
 * namespace made it).
 */
export function pidsByNetInode<K>(byInode: ReadonlyMap<string, K>): Map<K, number[]> {
  const out = new Map<K, number[]>();
  if (byInode.size === 0) return out;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${entry}/ns/net`);
    } catch {
      continue; // exited meanwhile, or a kernel thread
    }
    const ns = byInode.get(/^net:\[(\d+)\]$/.exec(link)?.[1] ?? "");
    if (ns === undefined) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    out.set(ns, [...(out.get(ns) ?? []), pid]);
  }
  return out;
}

function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * SIGKILLs everything in the namespaces, again and again until nothing is left (a process may
 * fork between the scan and the kill) or `timeoutMs` passes. Returns the pids still alive.
 */
export async function killNamespaceProcesses(namespaces: readonly string[], timeoutMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; round < 200; round++) {
    const pids = [...pidsInNamespaces(namespaces).values()].flat();
    if (pids.length === 0) return [];
    if (Date.now() >= deadline) return pids;
    killAll(pids);
    await sleep(Math.min(10 * (round + 1), 100));
  }
  return [...pidsInNamespaces(namespaces).values()].flat();
}

/** For process-exit handlers, where nothing asynchronous runs any more: one kill pass. */
export function killNamespaceProcessesSync(namespaces: readonly string[]): void {
  killAll([...pidsInNamespaces(namespaces).values()].flat());
}

export async function deleteNamespaces(namespaces: readonly string[]): Promise<void> {
  // -force: keep deleting the rest when one is already gone.
  await ipBatch(
    namespaces.map((ns) => `netns del ${ns}`),
    { force: true },
  ).catch(() => undefined);
}

export function deleteNamespacesSync(namespaces: readonly string[]): void {
  if (namespaces.length === 0) return;
  try {
    execFileSync("ip", ["-force", "-batch", "-"], {
      input: namespaces.map((ns) => `netns del ${ns}`).join("\n") + "\n",
      stdio: ["pipe", "ignore", "ignore"],
      timeout: 10_000,
    });
  } catch {
    // best effort: cleanupStaleLabs() catches what this misses
  }
}

/** Start time of a process (clock ticks since boot), to tell a live owner from a reused pid. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may contain spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first error after all settle. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
  return results;
}
