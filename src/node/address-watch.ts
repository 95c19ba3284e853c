import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "../util/log.ts";

/**
 * What a line of `ip -o monitor address` says (pure): "Deleted 3: eth0 inet 10.0.0.5/24 …" →
 * {kind: "deleted", address: "10.0.0.5"}, "3: eth0 inet 10.0.0.6/24 …" → added. Undefined for
 * link-local and Yggdrasil (200::/7) addresses — only an address this machine's peerings may be
 * bound to counts — and for anything else.
 */
export function addressEvent(line: string): { kind: "added" | "deleted"; address: string } | undefined {
  const m = /^(Deleted\s+)?\d+:\s+\S+\s+inet6?\s+([0-9A-Fa-f.:]+)\//.exec(line);
  const address = m?.[2];
  if (address === undefined) return undefined;
  if (/^fe80:/i.test(address) || /^2[0-9a-f]{2}:/i.test(address)) return undefined;
  return { kind: m?.[1] ? "deleted" : "added", address };
}

/** How long a burst of address events is gathered before `onChange` runs once. */
const SETTLE_MS = 200;
/** How long after `ip monitor` exits it is started again. */
const RESTART_MS = 5000;

/**
 * Tells the node at once when its addresses change — a machine that changes networks
 * (a phone, a laptop on another Wi-Fi, a VPS renumbered) — rather than at the agent's next tick
 * (up to 5 s later): its peerings bound to the old address are dead, and every second until it
 * re-peers from the new one is a second an open connection over the mesh stays frozen (TCP's
 * retransmission back-off then adds its own wait on top). Runs `ip -o monitor address`
 * (iproute2, which every member has); where it cannot run, the agent's tick still notices,
 * only later. Costs one idle process.
 */
export class AddressWatch {
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private pending = false;

  constructor(
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.child || this.stopped) return;
    let child: ChildProcess;
    try {
      child = spawn("ip", ["-o", "monitor", "address"], { stdio: ["ignore", "pipe", "ignore"] });
    } catch (e) {
      this.log.debug(`address watch: cannot run ip monitor (${(e as Error).message}); address changes are noticed at the next tick`);
      return;
    }
    this.child = child;
    child.on("error", (e) => this.log.debug(`address watch: ${e.message}; address changes are noticed at the next tick`));
    let buffer = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (addressEvent(line) !== undefined) this.note();
      }
    });
    child.on("exit", () => {
      this.child = undefined;
      if (this.stopped) return;
      this.restartTimer = setTimeout(() => this.start(), RESTART_MS);
      this.restartTimer.unref();
    });
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.child?.kill("SIGTERM");
    this.child = undefined;
  }

  private note(): void {
    if (this.pending) return;
    this.pending = true;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pending = false;
      this.onChange();
    }, SETTLE_MS);
    this.timer.unref();
  }
}
