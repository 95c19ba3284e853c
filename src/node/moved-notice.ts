import { isIP } from "node:net";
import { z } from "zod";
import type { PeerInfo } from "../mesh/yggdrasil/admin.ts";
import { destroySockets, farEndFilter } from "../mesh/socket-destroy.ts";
import type { Logger } from "../util/log.ts";
import { parseDatagram, sendOnSchedule, UdpInbox } from "./udp-inbox.ts";

/*
 * A member whose address went away (a phone on another network, a renumbered VPS) re-peers from
 * its new address at once (mesh-service.ts addressesChanged). Its peers, though, still hold the
 * peerings to its old address: nothing tells them the far end is gone, and Yggdrasil 0.5 sends
 * over the peering that has been up longest (ironwood router.go: equal cost → lowest `order`),
 * so their packets to the member go into the dead one until ironwood's peer timeout closes it,
 * 3 s after the first unanswered packet. An open connection over the mesh (an SSH session) then
 * waits for TCP's next retransmission: 6.2 s after the move in the phone story.
 *
 * So the member tells them. It closes its own sockets on the gone address, re-peers, and sends
 * each peer a small UDP datagram over the mesh naming the addresses it lost; the peer closes
 * the peerings to that member whose far end is one of them (`ss -K`, the kernel's socket
 * destroy, since yggdrasil's admin socket cannot drop an inbound peering). The datagram's
 * source is the member's mesh address, which only the holder of its key can send from, and only
 * that member's own peerings are touched: a member can speak for itself alone.
 */

/** What a notice may name: a member has a handful of addresses. */
const MAX_ADDRESSES = 16;
const MAX_DATAGRAM = 1024;

/** When, after the move, the notice is sent (ms): again and again until the new peerings are surely up. */
export const NOTICE_SCHEDULE_MS = [0, 250, 600, 1200, 2500, 5000] as const;

/**
 * The datagram for `gone` (IP literals). Throws an Error (a bug) for anything not an IP literal
 * or more than MAX_ADDRESSES of them.
 */
export function encodeMovedNotice(gone: readonly string[]): Buffer {
  if (gone.length === 0 || gone.length > MAX_ADDRESSES || gone.some((a) => isIP(a) === 0)) throw new Error(`not a list of 1–${MAX_ADDRESSES} IP addresses: ${JSON.stringify(gone)}`);
  return Buffer.from(JSON.stringify({ v: 1, gone }));
}

/** The addresses a datagram names, or undefined when it is not a version-1 notice. Pure; throws nothing. */
export function parseMovedNotice(datagram: Buffer): string[] | undefined {
  return parseDatagram(datagram, MAX_DATAGRAM, movedNotice)?.gone.map(canonicalIp);
}

const movedNotice = z.object({ v: z.literal(1), gone: z.array(z.string().refine((a) => isIP(a) !== 0)).min(1).max(MAX_ADDRESSES) });

/** "::ffff:10.0.0.5" → "10.0.0.5"; IPv6 lowercased. How getPeers, `ip monitor` and dgram can differ. */
export function canonicalIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith("::ffff:") && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/** Host and port of a getPeers `remote` ("tcp://198.18.0.1:4863", "tls://[fd00::1]:4863"), or undefined. */
export function remoteEndpoint(remote: string): { host: string; port: number } | undefined {
  const m = /^[a-z]+:\/\/(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})(?:[/?].*)?$/.exec(remote);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  if (isIP(host) === 0 || port < 1 || port > 65535) return undefined;
  return { host: canonicalIp(host), port };
}

/**
 * The peerings to close for a notice from mesh address `from` naming `gone`: every peering up
 * with that member (its mesh address) whose far end is at a gone address, as host and port.
 * Pure; throws nothing.
 */
export function staleEndpoints(peers: readonly PeerInfo[], from: string, gone: readonly string[]): { host: string; port: number }[] {
  const goneSet = new Set(gone.map(canonicalIp));
  const out: { host: string; port: number }[] = [];
  for (const p of peers) {
    if (!p.up || canonicalIp(p.address) !== canonicalIp(from)) continue;
    const end = remoteEndpoint(p.remote);
    if (end && goneSet.has(end.host)) out.push(end);
  }
  return out;
}

/**
 * Receives moved notices on [meshAddress]:port (UDP; the number of the agent's liveness port,
 * which is TCP) and closes the stale peerings they point at. At most UDP_INBOX_MAX_PER_SECOND
 * notices are looked at per second, whoever sends them. Never throws: a port it cannot take is
 * logged once (peers then wait out yggdrasil's timeout after a member moves) and tried again
 * at the next ensure.
 */
export class MovedNoticeListener {
  private readonly inbox: UdpInbox;

  constructor(
    private readonly peers: () => Promise<readonly PeerInfo[]>,
    private readonly log: Logger,
  ) {
    this.inbox = new UdpInbox(
      (d, from) => void this.receive(d, from),
      (where, reason) => `the agent could not open ${where} for moved notices (${reason}); when a member's address changes, its peerings here close only at yggdrasil's own timeout.`,
      log,
    );
  }

  ensure(meshAddress: string, port: number): Promise<void> {
    return this.inbox.ensure(meshAddress, port);
  }

  stop(): void {
    this.inbox.stop();
  }

  private async receive(datagram: Buffer, from: string): Promise<void> {
    const gone = parseMovedNotice(datagram);
    if (!gone) return;
    let peers: readonly PeerInfo[];
    try {
      peers = await this.peers();
    } catch {
      return;
    }
    const stale = staleEndpoints(peers, from, gone);
    if (stale.length === 0) return;
    this.log.info(`${from} moved away from ${gone.join(", ")}: closing ${stale.length} peering(s) to its old address`);
    for (const end of stale) await destroySockets(farEndFilter(end), this.log);
  }
}

/**
 * Sends the notice for `gone` to each of `meshAddresses` on `port`, at every NOTICE_SCHEDULE_MS
 * step (the first at once); resolves when the last is sent. Never throws: a datagram that cannot
 * go (no route yet) is simply tried at the next step.
 */
export async function announceMove(meshAddresses: readonly string[], port: number, gone: readonly string[], log: Logger): Promise<void> {
  const targets = [...new Set(meshAddresses)];
  const valid = gone.filter((a) => isIP(a) !== 0).slice(0, MAX_ADDRESSES);
  if (targets.length === 0 || valid.length === 0) return;
  const datagram = encodeMovedNotice(valid);
  await sendOnSchedule(targets.map((host) => ({ host, port })), NOTICE_SCHEDULE_MS, () => datagram);
  log.debug(`moved notice for ${valid.join(", ")} sent to ${targets.length} peer(s)`);
}
