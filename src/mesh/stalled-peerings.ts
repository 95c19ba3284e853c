import { readdirSync, readlinkSync } from "node:fs";
import { run } from "../util/exec.ts";

/**
 * Peerings whose TCP connection stopped getting answers, found and closed from outside
 * yggdrasil.
 *
 * Why: Yggdrasil 0.4 (Debian's 0.4.7) keeps routing over a peering whose packets no longer
 * arrive (a blackholed route, a cut cable, a peer gone without a FIN) until its own link timeout,
 * about 6 s; only then does its tree route around it. In a chaos partition that left two voters
 * on one side, their etcd could not reach each other over the mesh for 7.5 s. The kernel knows
 * sooner: data waits in the connection's send queue and TCP backs its retransmissions off.
 * Closing such a connection (`ss -K`, a socket destroy) makes yggdrasil drop the peering at once
 * and route around it; it dials the peer again itself, and the agent's peer loop does too, so a
 * link that was only slow comes back within a second or two.
 */

/** One established TCP connection as `ss -tieH state established` shows it. */
export interface TcpConnection {
  readonly local: { readonly host: string; readonly port: number };
  readonly peer: { readonly host: string; readonly port: number };
  /** Bytes sent and not acknowledged, or not sent yet (ss's Send-Q). */
  readonly sendQueue: number;
  /** The socket's inode (how a process's fds name it: `socket:[N]`); undefined when ss does not say. */
  readonly inode: number | undefined;
  /** How many times the retransmission timer has backed off without an ACK (0 when ss shows none). */
  readonly backoff: number;
  /** Milliseconds since the last ACK came in; undefined when ss does not say. */
  readonly lastAckMs: number | undefined;
}

/**
 * When a connection counts as stalled: data waiting in its send queue (sent and unacknowledged,
 * or not sendable: a route that went away or turned into a blackhole), the retransmission timer
 * backed off `minBackoff` times — the retransmission itself went unanswered too (with Linux's
 * 200 ms minimum RTO: 0.6 s of silence at 2 on a LAN, longer over a WAN, where the RTO is
 * longer) — and no ACK for `minLastAckMs`. Fast retransmits of a congested but live link do not
 * back the timer off; only a path that answers nothing does. In a chaos partition, 3 backoffs
 * and 2 s found the cut peerings 2.1–3.1 s after the cut, and the two voters left without their
 * leader talked again 3.1 s after it, elected one 5 s after it.
 */
export const STALL_RULE = { minBackoff: 2, minLastAckMs: 1000 } as const;

function hostPort(s: string): { host: string; port: number } | undefined {
  const i = s.lastIndexOf(":");
  if (i <= 0) return undefined;
  const port = Number(s.slice(i + 1));
  let host = s.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  // An interface scope (fe80::1%eth0) is not part of the address ss filters on.
  const scope = host.indexOf("%");
  if (scope >= 0) host = host.slice(0, scope);
  return Number.isInteger(port) && port > 0 && port < 65536 && host ? { host, port } : undefined;
}

/**
 * Parses the output of `ss -tieH state established` (iproute2 5.x–6.x): per connection a line
 * `Recv-Q Send-Q local:port peer:port [ino:N sk:… …]` and an indented line of `key:value`
 * facts. Lines it cannot read are skipped. Pure; never throws.
 */
export function parseSs(text: string): TcpConnection[] {
  const out: TcpConnection[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim() || /^\s/.test(line)) continue;
    const cols = line.trim().split(/\s+/);
    const local = hostPort(cols[2] ?? "");
    const peer = hostPort(cols[3] ?? "");
    if (!local || !peer) continue;
    const ino = /\sino:(\d+)/.exec(line);
    const facts = i + 1 < lines.length && /^\s/.test(lines[i + 1]!) ? lines[++i]! : "";
    const num = (key: string) => {
      const m = new RegExp(`(?:^|\\s)${key}:(\\d+)`).exec(facts);
      return m ? Number(m[1]) : undefined;
    };
    const sendQueue = Number(cols[1]);
    out.push({ local, peer, sendQueue: Number.isInteger(sendQueue) ? sendQueue : 0, inode: ino ? Number(ino[1]) : undefined, backoff: num("backoff") ?? 0, lastAckMs: num("lastack") });
  }
  return out;
}

/** The connections among `sockets` (inodes: socketInodes) that are stalled by `rule` (see STALL_RULE). Pure. */
export function stalledConnections(conns: readonly TcpConnection[], sockets: ReadonlySet<number>, rule: { minBackoff: number; minLastAckMs: number } = STALL_RULE): TcpConnection[] {
  return conns.filter((c) => c.inode !== undefined && sockets.has(c.inode) && c.sendQueue > 0 && c.backoff >= rule.minBackoff && (c.lastAckMs ?? 0) >= rule.minLastAckMs);
}

/**
 * This machine's established TCP connections with an end on one of `ports` (local or remote):
 * `ss -tieH state established ( sport = :P or dport = :P … )`. Not `-p`: that reads every
 * process's fds on the machine (every lab member's, where they share one), each second.
 * Undefined when ss is missing or fails (the caller then does without). Never throws.
 */
export async function listTcp(ports: readonly number[]): Promise<TcpConnection[] | undefined> {
  if (ports.length === 0) return [];
  const filter = ["(", ...ports.flatMap((p, i) => [...(i > 0 ? ["or"] : []), "sport", "=", `:${p}`, "or", "dport", "=", `:${p}`]), ")"];
  const out = await run("ss", ["-tieH", "state", "established", ...filter], { timeoutMs: 3000 }).catch(() => undefined);
  return out && out.exitCode === 0 ? parseSs(out.stdout) : undefined;
}

/**
 * The inodes of process `pid`'s sockets, from its fds (`/proc/<pid>/fd/N` → `socket:[inode]`).
 * Empty when the process is gone or its fds cannot be read. Never throws.
 */
export function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}
