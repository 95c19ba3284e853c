import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { processStart, sameProcess } from "./process-identity.ts";
import type { NodePaths } from "./paths.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/**
 * The files that say which agent runs for a node: `agentLock` is the claim, one line
 * `<pid> <boot id> <start ticks>` (see processStart) that names one process for its whole life;
 * `agentPid` holds the bare pid, for people and scripts (`kill "$(cat agent.pid)"`), and is
 * never trusted on its own.
 */
export type AgentFiles = Pick<NodePaths, "root" | "agentPid" | "agentLock">;

/** A parsed claim: the agent's pid and its start (`<boot id>/<ticks>`). */
export interface AgentClaim {
  readonly pid: number;
  readonly start: string;
}

/** The claim file's text for a process (`start` as processStart gives it). */
export function claimText(pid: number, start: string): string {
  const [boot, ticks] = start.split("/");
  return `${pid} ${boot} ${ticks}\n`;
}

/** A claim file's text, or undefined when it is not one (empty, cut short, another format). */
export function parseClaim(text: string): AgentClaim | undefined {
  const m = /^(\d+) ([^\s/]+) (\d+)\n?$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid > 0 ? { pid, start: `${m[2]}/${m[3]}` } : undefined;
}

/**
 * The pure decision: the agent `claimText` names still runs iff the process now behind its pid
 * (`now`, processStart of that pid) is the one that wrote the claim — same boot, same start
 * tick, not a zombie. A claim from an earlier boot (the cache dir survives reboots) or a pid
 * handed out again never counts, whatever that process is called.
 */
export function claimHolder(claimText: string, now: (pid: number) => { start: string; state: string } | undefined): number | undefined {
  const claim = parseClaim(claimText);
  return claim && sameProcess(claim.start, now(claim.pid)) ? claim.pid : undefined;
}

/**
 * The pure decision for a pidfile written by an older version (no claim beside it): its pid is
 * an agent of this node only when that process runs `… agent` and its environment names this
 * node's cache dir (every way the agent is started sets RAPTIFORMICA_CACHE_DIR), which a process
 * of another boot that happens to get the pid does not.
 */
export function legacyHolder(cmdline: string | undefined, environ: string | undefined, cacheDir: string): boolean {
  if (cmdline === undefined || environ === undefined) return false;
  const args = cmdline.split("\0").filter(Boolean);
  // The agent itself is node (or the installed launcher) running raptiformica: not its keeper,
  // a shell whose argv ends with the agent's own (`sh …/raptiformica-agent-keeper … agent`),
  // which after a container restart can get the pid the agent had before.
  const program = (args[0] ?? "").split("/").pop() ?? "";
  if (!/^(node(js)?\d*|raptiformica)$/.test(program)) return false;
  return args.at(-1) === "agent" && environ.split("\0").includes(`RAPTIFORMICA_CACHE_DIR=${cacheDir}`);
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function legacyAgent(files: AgentFiles): number | undefined {
  const pid = Number(read(files.agentPid)?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const facts = processStart(pid);
  if (!facts || facts.state === "Z" || facts.state === "X") return undefined;
  return legacyHolder(read(`/proc/${pid}/cmdline`), read(`/proc/${pid}/environ`), dirname(files.root)) ? pid : undefined;
}

/**
 * The pid of the agent of this node if one runs (see claimHolder); an agent of an older version,
 * which wrote only the bare pidfile, is recognised by legacyHolder.
 */
export function runningAgent(files: AgentFiles): number | undefined {
  const text = read(files.agentLock);
  if (text !== undefined) return claimHolder(text, processStart);
  return legacyAgent(files);
}

/**
 * Tells the agent of this node, if one runs, to reconcile now (SIGUSR1: dial the neighbours,
 * check consensus). Returns whether one was told.
 */
export function pokeAgent(files: AgentFiles): boolean {
  const pid = runningAgent(files);
  if (pid === undefined) return false;
  process.kill(pid, "SIGUSR1");
  return true;
}

function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

/**
 * Claims the node for this process: never two agents per node. The claim appears whole or not
 * at all (written aside, then hard-linked into place, which fails when one exists). A claim
 * whose process is gone — killed, or from before a reboot, even when its pid now belongs to
 * another process — is taken over at once: moved aside, and put back should it turn out to be
 * a fresh claim another starter made meanwhile. The claim's directory is made (0700) when
 * missing: whoever starts the agent (its keeper, its systemd unit, a user) need not have made it.
 * @returns `ok: false` with the pid of the agent that runs (-1 when it could not be told).
 * @throws the fs error when the directory cannot be made or the claim not written.
 */
export function acquireAgentLock(files: AgentFiles): { ok: true; release: () => void } | { ok: false; pid: number } {
  makePrivateDir(dirname(files.agentLock));
  const mine = processStart(process.pid);
  if (!mine) throw new Error("cannot tell this process's start time from /proc");
  const text = claimText(process.pid, mine.start);
  const tmp = `${files.agentLock}.${process.pid}.tmp`;
  const aside = `${files.agentLock}.${process.pid}.stale`;
  writeFileSync(tmp, text, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(tmp, files.agentLock);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const seen = read(files.agentLock);
        if (seen === undefined) continue;
        const holder = claimHolder(seen, processStart);
        if (holder !== undefined && holder !== process.pid) return { ok: false, pid: holder };
        try {
          renameSync(files.agentLock, aside);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code === "ENOENT") continue;
          throw e2;
        }
        // Another starter may have replaced the stale claim between our read and the move:
        // then what we moved is its fresh claim, which goes back.
        if (read(aside) !== seen) {
          try {
            linkSync(aside, files.agentLock);
          } catch {
            /* a third claim is in place: it stands */
          }
        }
        rmSync(aside, { force: true });
        continue;
      }
      // An agent of an older version runs without a claim: it keeps the node.
      const legacy = legacyAgent(files);
      if (legacy !== undefined && legacy !== process.pid) {
        rmSync(files.agentLock, { force: true });
        return { ok: false, pid: legacy };
      }
      writeAtomic(files.agentPid, `${process.pid}\n`, 0o644);
      return {
        ok: true,
        release: () => {
          if (read(files.agentLock) !== text) return;
          if (read(files.agentPid)?.trim() === String(process.pid)) rmSync(files.agentPid, { force: true });
          rmSync(files.agentLock, { force: true });
        },
      };
    }
    return { ok: false, pid: runningAgent(files) ?? -1 };
  } finally {
    rmSync(tmp, { force: true });
  }
}
