import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { endianness } from "node:os";

/**
 * Peerings whose TCP connection stopped getting answers, found and closed from outside
 * yggdrasil.
 *
 * Why: Yggdrasil 0.4 (Debian's 0.4.7) keeps routing over a peering whose packets no longer
 * arrive (a blackholed route, a cut cable, a peer gone without a FIN) until its own link timeout,
 * about 6 s; only then does its tree route around it. In a chaos partition that left two voters
 * on one side, their etcd could not reach each other over the mesh for 7.5 s. The kernel knows
 * sooner: data waits in the connection's send queue and TCP retransmits it, unanswered.
 * Closing such a connection (`ss -K`, a socket destroy) makes yggdrasil drop the peering at once
 * and route around it; it dials the peer again itself, and the agent's peer loop does too, so a
 * link that was only slow comes back within a second or two.
 *
 * The connections are read from yggdrasil's own `/proc/<pid>/net/tcp` and `tcp6` (its network
 * namespace's TCP table), not from `ss`: a spawn of ss each second cost an agent about 20 ms of
 * CPU, 2 % of a core at rest on every member, and reading the table costs well under a
 * millisecond, so it can be looked at four times a second.
 */
/** One established TCP connection as `/proc/<pid>/net/tcp{,6}` shows it. */
export interface TcpConnection {
  readonly local: { readonly host: string; readonly port: number };
  readonly peer: { readonly host: string; readonly port: number };
  /** Bytes sent and not acknowledged, or not sent yet (tx_queue: write_seq − snd_una). */
  readonly sendQueue: number;
  /** The socket's inode (how a process's fds name it: `socket:[N]`). */
  readonly inode: number;
  /**
   * How many times in a row TCP has sent without an answer: retransmissions on the
   * retransmission timer (`retrnsmt`, the far end or the path drops them), or probes on the
   * probe timer (the `timeout` column, icsk_probes_out: what a route that turned into a
   * blackhole gives, since nothing can be sent at all). Reset by the kernel when an ACK moves
   * the window. Captured on Linux 6.1: a blackholed route showed timer 04 with the probes
   * rising, replies dropped at the far side timer 01 with retrnsmt rising, 0.75–1 s to 2.
   */
  readonly unanswered: number;
}

/** Established (st 01) in the kernel's TCP table. */
const ESTABLISHED = "01";

/** An address of the kernel's TCP table (hex words of the address in host byte order) as text. */
function tableAddress(hex: string): string | undefined {
  if (!/^[0-9A-F]+$/i.test(hex) || (hex.length !== 8 && hex.length !== 32)) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(endianness() === "LE" ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join(".");
  const groups = [0, 2, 4, 6, 8, 10, 12, 14].map((i) => ((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // ::ffff:a.b.c.d (an IPv4 peer of a dual-stack socket) as the IPv4 address, as yggdrasil reports it.
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") return bytes.slice(12).join(".");
  return compressIpv6(groups);
}

/** RFC 5952 text of eight hex groups: the longest run of two or more zero groups as "::". */
function compressIpv6(groups: readonly string[]): string {
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}

function tableEnd(s: string): { host: string; port: number } | undefined {
  const [addr, port] = s.split(":");
  const host = tableAddress(addr ?? "");
  const p = parseInt(port ?? "", 16);
  return host !== undefined && Number.isInteger(p) && p > 0 && p < 65536 ? { host, port: p } : undefined;
}

/**
 * Parses the kernel's TCP table (`/proc/net/tcp` or `tcp6`, Linux 2.6–6.x): per socket
 * `sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …`. Only
 * established connections; the header and lines it cannot read are skipped. Pure; never throws.
 */
export function parseTcpTable(text: string): TcpConnection[] {
  const out: TcpConnection[] = [];
  for (const line of text.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || !/^\d+:$/.test(cols[0]!) || cols[3] !== ESTABLISHED) continue;
    const local = tableEnd(cols[1]!);
    const peer = tableEnd(cols[2]!);
    const sendQueue = parseInt(cols[4]!.split(":")[0] ?? "", 16);
    const retransmits = parseInt(cols[6]!, 16);
    const probes = Number(cols[8]);
    const inode = Number(cols[9]);
    if (!local || !peer || !Number.isInteger(sendQueue) || !Number.isInteger(inode) || inode <= 0) continue;
    out.push({ local, peer, sendQueue, inode, unanswered: Math.max(Number.isInteger(retransmits) ? retransmits : 0, Number.isInteger(probes) ? probes : 0) });
  }
  return out;
}

/**
 * The established TCP connections of process `pid`'s network namespace with an end on one of
 * `ports` (local or remote), from `/proc/<pid>/net/tcp` and `tcp6`. Undefined when neither can
 * be read (the process is gone). Never throws.
 */
export function readTcpTable(pid: number, ports: readonly number[]): TcpConnection[] | undefined {
  const wanted = new Set(ports);
  let read = false;
  const out: TcpConnection[] = [];
  for (const file of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, "utf8");
      read = true;
    } catch {
      continue;
    }
    for (const c of parseTcpTable(text)) if (wanted.has(c.local.port) || wanted.has(c.peer.port)) out.push(c);
  }
  return read ? out : undefined;
}

/**
 * When a connection counts as stalled: data waiting in its send queue, TCP's last
 * `minUnanswered` sends in a row unanswered (with Linux's 200 ms minimum RTO, 0.6 s of silence
 * at 2 on a LAN; longer over a WAN, where the RTO is), and this seen for `minHeldMs` since the
 * first unanswered send was seen: about a second without an ACK, what the rule read from ss's
 * `lastack` was before. Fast retransmits of a congested but live link are not counted; only a
 * path that answers nothing is. In a chaos partition, that rule (2 backoffs and 1 s since the
 * last ACK, looked at every second) found the cut peerings 1–2 s after the cut.
 */
export const STALL_RULE = { minUnanswered: 2, minHeldMs: 500 } as const;

/**
 * Follows the connections of a set of sockets across looks and says which are stalled by
 * `rule` (STALL_RULE): the time since each was first seen with a send unanswered is kept here,
 * as the kernel's table has no time of the last ACK.
 */
export class StallWatch {
  /** Since when (ms, the caller's clock) each socket has been seen with a send unanswered, by inode. */
  private readonly since = new Map<number, number>();

  constructor(private readonly rule: { readonly minUnanswered: number; readonly minHeldMs: number } = STALL_RULE) {}

  /**
   * One look at `conns` at `now` (ms): the connections among `sockets` (inodes: socketInodes)
   * that are stalled. A socket no longer listed, or answered again, is forgotten. Pure but for
   * this watch's own memory.
   */
  observe(conns: readonly TcpConnection[], sockets: ReadonlySet<number>, now: number): TcpConnection[] {
    const waiting = conns.filter((c) => sockets.has(c.inode) && c.sendQueue > 0 && c.unanswered >= 1);
    const seen = new Set(waiting.map((c) => c.inode));
    for (const inode of [...this.since.keys()]) if (!seen.has(inode)) this.since.delete(inode);
    for (const c of waiting) if (!this.since.has(c.inode)) this.since.set(c.inode, now);
    return waiting.filter((c) => c.unanswered >= this.rule.minUnanswered && now - this.since.get(c.inode)! >= this.rule.minHeldMs);
  }

  /** How long (ms) `c` has been seen with a send unanswered, at `now`; 0 when it is not. */
  heldMs(c: TcpConnection, now: number): number {
    const t = this.since.get(c.inode);
    return t === undefined ? 0 : now - t;
  }
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
