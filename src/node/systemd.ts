import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import { run } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";

/** Whether systemd is PID 1 here (not in most containers). */
export function systemdIsInit(): boolean {
  try {
    return readFileSync("/proc/1/comm", "utf8").trim() === "systemd";
  } catch {
    return false;
  }
}

export function unitName(cacheDir: string, defaultCacheDir: string): string {
  if (cacheDir === defaultCacheDir) return "raptiformica-agent.service";
  return `raptiformica-agent-${createHash("sha256").update(cacheDir).digest("hex").slice(0, 8)}.service`;
}

/**
 * The agent's unit: restarted by systemd whenever it exits, started at boot. KillMode=process
 * because yggdrasil and etcd are detached children the next agent adopts; stopping the agent
 * must not take the mesh down with it. StartLimitIntervalSec=0: systemd never gives up
 * restarting it (its default, 5 starts in 10 s, would leave a member whose agent keeps failing
 * for a while — no network yet, a full disk — without one for good).
 */
export function renderUnit(o: { node: string; nodeFlags: readonly string[]; script: string; cacheDir: string; home: string }): string {
  const q = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return [
    "[Unit]",
    "Description=raptiformica agent (keeps this machine in its cluster)",
    "After=network-online.target",
    "Wants=network-online.target",
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    `Environment=${q(`RAPTIFORMICA_CACHE_DIR=${o.cacheDir}`)}`,
    `Environment=${q(`HOME=${o.home}`)}`,
    "Environment=MALLOC_ARENA_MAX=2",
    `ExecStart=${[o.node, ...o.nodeFlags, o.script].map(q).join(" ")} agent`,
    "Restart=always",
    "RestartSec=1",
    "KillMode=process",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export async function installUnit(name: string, text: string): Promise<void> {
  const path = `/etc/systemd/system/${name}`;
  let current = "";
  try {
    current = readFileSync(path, "utf8");
  } catch {
    /* new unit */
  }
  if (current !== text) {
    await writeFileAtomic(path, text, { mode: 0o644 });
    const reload = await run("systemctl", ["daemon-reload"], { timeoutMs: 30_000 });
    if (reload.exitCode !== 0) throw new UserError(`systemctl daemon-reload failed: ${reload.stderr.trim()}`);
  }
  const enable = await run("systemctl", ["enable", "--now", name], { timeoutMs: 60_000 });
  if (enable.exitCode !== 0) throw new UserError(`systemctl enable --now ${name} failed: ${enable.stderr.trim()}. See \`journalctl -u ${name}\`.`);
}
