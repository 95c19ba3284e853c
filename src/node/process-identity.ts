import { readFileSync } from "node:fs";

/** This boot of the machine (/proc/sys/kernel/random/boot_id); undefined when /proc cannot tell. */
export function bootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * When a process started, as `<boot id>/<clock ticks since boot>` (/proc/sys/kernel/random/boot_id
 * and field 22 of /proc/<pid>/stat), and its state (field 3). The start names one process for
 * its whole life: it survives exec (a wrapper that execs the daemon), and a pid handed out again
 * later — by this boot or the next — comes with another one. Undefined when /proc cannot tell
 * (no such process, no /proc).
 */
export function processStart(pid: number): { start: string; state: string } | undefined {
  try {
    const boot = bootId();
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may itself contain ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [state, ticks] = [fields[0], fields[19]];
    return boot && state && ticks ? { start: `${boot}/${ticks}`, state } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process `facts` describe (processStart of the recorded pid, read now) is still
 * the one recorded as started at `recordedStart`: same boot, same start tick, and neither a
 * zombie (exited, waiting to be reaped) nor dead. A pid from an earlier boot, or handed out
 * again in this one, never matches — whatever that process is and whatever its command line.
 */
export function sameProcess(recordedStart: string, facts: { start: string; state: string } | undefined): boolean {
  return facts !== undefined && facts.start === recordedStart && facts.state !== "Z" && facts.state !== "X";
}
