import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { isIP } from "node:net";
import { z } from "zod";
import type { PeerInfo } from "../mesh/yggdrasil/admin.ts";
import type { Identity } from "../mesh/yggdrasil/identity.ts";
import type { Logger } from "../util/log.ts";
import { canonicalIp } from "./moved-notice.ts";
import { parseDatagram, sendOnSchedule, UdpInbox } from "./udp-inbox.ts";

/*
 * The way back in for a member that moved. Yggdrasil reads AllowedPublicKeys only when it
 * starts (0.5 has no call to change it), so a member whose key is newer than another member's
 * Yggdrasil — the last to join a cluster that just formed — is refused when it dials in. That
 * did not matter while the others dialled it; but once it moves (a phone on another network, a
 * renumbered VPS) they dial its old address, and it can only dial in, refused, until a restart
 * lets its key in (the lock-out rule, after 15 s: the phone story froze 6.6–13 s).
 *
 * So it asks them to dial it: a small UDP datagram over the underlay, to each neighbour's host
 * on the number of its Yggdrasil port, naming its key and its Yggdrasil port, with the time,
 * signed with its Yggdrasil key (ed25519). A neighbour that checks the signature against the
 * key of a member it would peer with anyway dials it at the datagram's source address: an
 * outbound peering, which the allowed keys do not govern, pinned to that key. Nothing else is
 * done on a datagram's word, so a forged or replayed one can at most make a member dial an
 * address where the key's holder is not, and the pinned key then refuses the peering.
 */

const MAGIC = "raptiformica dial-back v1";
/** A request older (or further ahead) than this is refused (ms): a replay after that window cannot be used at all. */
export const DIAL_BACK_MAX_AGE_MS = 60_000;
/** When, after a move, the request is sent (ms): again until the peerings are surely up. */
export const DIAL_BACK_SCHEDULE_MS = [0, 300, 1000, 2500, 5000, 10_000] as const;
const MAX_DATAGRAM = 512;

const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** A checked request: who asks to be dialled, on which Yggdrasil port, and when it asked (ms since the epoch). */
export interface DialBackRequest {
  readonly publicKey: string;
  readonly port: number;
  readonly at: number;
}

function signedText(publicKey: string, port: number, at: number): Buffer {
  return Buffer.from(`${MAGIC}\n${publicKey}\n${port}\n${at}`);
}

/**
 * The datagram asking to be dialled on Yggdrasil port `port`, signed with `identity`'s key,
 * dated `at` (ms since the epoch). Throws an Error (a bug) for a port outside 1–65535.
 */
export function encodeDialBack(identity: Pick<Identity, "privateKey" | "publicKey">, port: number, at: number): Buffer {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a TCP port: ${port}`);
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.from(identity.privateKey.slice(0, 64), "hex")]), format: "der", type: "pkcs8" });
  const sig = sign(null, signedText(identity.publicKey, port, at), key).toString("hex");
  return Buffer.from(JSON.stringify({ v: 1, key: identity.publicKey, port, at, sig }));
}

/**
 * The request a datagram carries when it is a version-1 request whose signature is good and
 * whose time is within DIAL_BACK_MAX_AGE_MS of `now`; else undefined. Pure; throws nothing.
 */
export function verifyDialBack(datagram: Buffer, now: number): DialBackRequest | undefined {
  const doc = parseDatagram(datagram, MAX_DATAGRAM, dialBackRequest);
  if (!doc || Math.abs(now - doc.at) > DIAL_BACK_MAX_AGE_MS) return undefined;
  try {
    const pub = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(doc.key, "hex")]), format: "der", type: "spki" });
    if (!verify(null, signedText(doc.key, doc.port, doc.at), pub, Buffer.from(doc.sig, "hex"))) return undefined;
  } catch {
    return undefined;
  }
  return { publicKey: doc.key, port: doc.port, at: doc.at };
}

const dialBackRequest = z.object({
  v: z.literal(1),
  key: z.string().regex(/^[0-9a-f]{64}$/),
  port: z.number().int().min(1).max(65535),
  at: z.number().int().safe(),
  sig: z.string().regex(/^[0-9a-f]{128}$/),
});

/** What the listener asks of the mesh service. */
export interface DialBackHooks {
  /** Whether this node would peer with `publicKey` (a neighbour it dials): only those are dialled back. */
  wants(publicKey: string): boolean;
  /** Dials `publicKey` at host:port now (an outbound peering pinned to the key). */
  dial(publicKey: string, host: string, port: number): Promise<void>;
}

/**
 * Receives dial-back requests on UDP [::]:port (the number of this node's Yggdrasil port, which
 * Yggdrasil uses for TCP) and dials back the neighbours that ask (see the comment at the top).
 * Each key's requests must be newer than the last one taken (no replay within the window); at
 * most UDP_INBOX_MAX_PER_SECOND datagrams are looked at per second, whoever sends them. Never
 * throws: a port it cannot take is logged once, and the lock-out rule (allowed-refresh.ts)
 * still lets a moved member in later.
 */
export class DialBackListener {
  private readonly inbox: UdpInbox;
  /** The time of the last request taken, by key. */
  private readonly lastAt = new Map<string, number>();

  constructor(
    private readonly hooks: DialBackHooks,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.inbox = new UdpInbox(
      (d, from) => void this.receive(d, from),
      (where, reason) => `the agent could not open ${where} for dial-back requests (${reason}); a member that moves may wait for a restart of Yggdrasil to be let in here.`,
      log,
    );
  }

  ensure(port: number): Promise<void> {
    return this.inbox.ensure("::", port);
  }

  stop(): void {
    this.inbox.stop();
  }

  private async receive(datagram: Buffer, from: string): Promise<void> {
    const req = verifyDialBack(datagram, this.now());
    if (!req || !this.hooks.wants(req.publicKey)) return;
    if (req.at <= (this.lastAt.get(req.publicKey) ?? -Infinity)) return;
    this.lastAt.set(req.publicKey, req.at);
    const host = canonicalIp(from);
    if (isIP(host) === 0) return;
    try {
      await this.hooks.dial(req.publicKey, host, req.port);
      this.log.info(`neighbour ${req.publicKey.slice(0, 16)}… asked to be dialled back at ${host} (it moved): dialling it there`);
    } catch (e) {
      this.log.debug(`dial-back to ${host}:${req.port}: ${(e as Error).message}`);
    }
  }
}

/**
 * Sends the dial-back request (this node's key, its Yggdrasil port `port`) to each of `targets`
 * (neighbours' hosts, on the number of their Yggdrasil port) at every DIAL_BACK_SCHEDULE_MS step,
 * each datagram dated when it is sent. Resolves when the last is sent. Never throws: a datagram
 * that cannot go (no route yet) is tried again at the next step.
 */
export async function requestDialBack(targets: readonly { readonly host: string; readonly port: number }[], identity: Pick<Identity, "privateKey" | "publicKey">, port: number, log: Logger): Promise<void> {
  await sendOnSchedule(targets, DIAL_BACK_SCHEDULE_MS, () => encodeDialBack(identity, port, Date.now()));
  log.debug(`dial-back request sent to ${targets.length} neighbour(s)`);
}

/** A peering this node dialled on a dial-back request: its URI (key pinned), the key, and when (ms since the epoch). */
export interface DialedBack {
  readonly uri: string;
  readonly publicKey: string;
  readonly at: number;
}

/** How long a dialled-back peering is kept at the least, ms: long enough for it to come up. */
export const DIAL_BACK_KEEP_MS = 60_000;

/**
 * The dialled-back peerings to forget now (remove from Yggdrasil's configured peers): those
 * older than DIAL_BACK_KEEP_MS whose peering is not up (the member moved on again) or whose key
 * this node no longer peers with (`wantsKey`) — never one whose URI is among `wanted` (the
 * configured peers' URIs: the member has since advertised that very address). Without this a
 * member that moves often would leave a dead address per move in every neighbour's Yggdrasil,
 * re-dialled until its next restart. Pure; throws nothing.
 */
export function staleDialBacks(dialed: readonly DialedBack[], peers: readonly PeerInfo[], wanted: ReadonlySet<string>, wantsKey: (publicKey: string) => boolean, now: number): DialedBack[] {
  return dialed.filter((d) => {
    if (wanted.has(d.uri) || now - d.at < DIAL_BACK_KEEP_MS) return false;
    const base = d.uri.split("?")[0];
    const up = peers.some((p) => p.up && p.inbound === false && p.remote === base && (p.publicKey === "" || p.publicKey === d.publicKey));
    return !up || !wantsKey(d.publicKey);
  });
}
