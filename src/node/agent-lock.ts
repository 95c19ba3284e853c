import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

function agentPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmd.includes("agent") ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the agent of this node if one runs. */
export function runningAgent(pidFile: string): number | undefined {
  return agentPid(pidFile);
}

/**
 * Tells the agent of this node, if one runs, to reconcile now (SIGUSR1: dial the neighbours,
 * check consensus). Returns whether one was told.
 */
export function pokeAgent(pidFile: string): boolean {
  const pid = agentPid(pidFile);
  if (pid === undefined) return false;
  process.kill(pid, "SIGUSR1");
  return true;
}

/**
 * Takes the agent pidfile exclusively: never two agents for one node. A pidfile left by a
 * dead agent (machine rebooted, agent killed) is taken over at once, not after a stale timeout,
 * so a restarted agent gets going immediately. The pidfile's directory is made (0700) when
 * missing: whoever starts the agent (`mesh`, its systemd unit, a user) need not have made it.
 * @throws the fs error when the directory cannot be made or the pidfile not written.
 */
export function acquireAgentLock(pidFile: string): { ok: true; release: () => void } | { ok: false; pid: number } {
  mkdirSync(dirname(pidFile), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(pidFile, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        ok: true,
        release: () => {
          if (agentPid(pidFile) === process.pid) rmSync(pidFile, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const other = agentPid(pidFile);
      if (other !== undefined && other !== process.pid) return { ok: false, pid: other };
      rmSync(pidFile, { force: true });
    }
  }
  const other = agentPid(pidFile);
  return { ok: false, pid: other ?? -1 };
}
