import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";
import type { z } from "zod";
import type { Logger } from "../util/log.ts";

/** How many datagrams an inbox looks at per second, whoever sends them; the rest are dropped. */
export const UDP_INBOX_MAX_PER_SECOND = 20;

/**
 * One UDP socket on which the agent takes small notices from other members (moved-notice.ts on
 * the mesh address, dial-back.ts on every address). `ensure(address, port)` binds it (again
 * only when either changed); a datagram goes to `receive(datagram, fromIp)` unless more than
 * UDP_INBOX_MAX_PER_SECOND came in the current second. Never throws: a port it cannot take is
 * logged once, as `whenUnbound(reason)` words it, and tried again at the next ensure.
 */
export class UdpInbox {
  private socket: Socket | undefined;
  private bound = "";
  private lastError = "";
  private windowStart = 0;
  private inWindow = 0;

  constructor(
    private readonly receive: (datagram: Buffer, from: string) => void,
    private readonly whenUnbound: (where: string, reason: string) => string,
    private readonly log: Logger,
  ) {}

  async ensure(address: string, port: number): Promise<void> {
    const where = `${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
    if (this.socket && this.bound === where) return;
    this.stop();
    const socket = createSocket({ type: "udp6", ipv6Only: false });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind({ address, port, exclusive: true }, () => resolve());
      });
    } catch (e) {
      socket.close();
      const msg = this.whenUnbound(`UDP ${where}`, (e as Error).message);
      if (msg !== this.lastError) this.log.warn(msg);
      this.lastError = msg;
      return;
    }
    socket.on("error", () => undefined);
    socket.on("message", (msg, rinfo) => {
      const now = Date.now();
      if (now - this.windowStart >= 1000) {
        this.windowStart = now;
        this.inWindow = 0;
      }
      if (++this.inWindow > UDP_INBOX_MAX_PER_SECOND) return;
      this.receive(msg, rinfo.address);
    });
    socket.unref();
    this.socket = socket;
    this.bound = where;
    this.lastError = "";
  }

  stop(): void {
    this.socket?.close();
    this.socket = undefined;
    this.bound = "";
  }
}

/**
 * Sends `datagram()` (made anew for each step, so it may carry the time) to every target
 * (`host`: an IP literal; IPv4 goes v4-mapped through one dual-stack socket) at each step of
 * `scheduleMs` (ms after the start; the first usually 0). Resolves once the last step is sent.
 * Never throws: a datagram that cannot go (no route yet) is simply tried at the next step.
 */
export async function sendOnSchedule(targets: readonly { readonly host: string; readonly port: number }[], scheduleMs: readonly number[], datagram: () => Buffer): Promise<void> {
  const valid = targets.filter((t) => isIP(t.host) !== 0);
  if (valid.length === 0) return;
  const socket = createSocket({ type: "udp6", ipv6Only: false });
  socket.on("error", () => undefined);
  socket.unref();
  const started = Date.now();
  try {
    for (const step of scheduleMs) {
      const wait = started + step - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
      const d = datagram();
      await Promise.all(valid.map((t) => new Promise<void>((r) => socket.send(d, t.port, isIP(t.host) === 4 ? `::ffff:${t.host}` : t.host, () => r()))));
    }
  } finally {
    socket.close();
  }
}

/**
 * The JSON document a datagram carries, checked by `schema`, or undefined when it is longer than
 * `maxBytes`, not JSON, or not of that shape. Pure; throws nothing.
 */
export function parseDatagram<T>(datagram: Buffer, maxBytes: number, schema: z.ZodType<T>): T | undefined {
  if (datagram.length > maxBytes) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(datagram.toString("utf8"));
  } catch {
    return undefined;
  }
  const r = schema.safeParse(doc);
  return r.success ? r.data : undefined;
}
