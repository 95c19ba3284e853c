import { createHash } from "node:crypto";
import { describeHostProblem, parseHost } from "../host.ts";
import { isPublicKeyHex } from "./address.ts";
import { meshPasswordProblem } from "./password.ts";
import type { Major } from "./version.ts";

export interface PeerSpec {
  /** IPv4, IPv6 (with or without brackets) or a DNS name. */
  host: string;
  port: number;
  /** The peer's public key: the connection is dropped unless the remote end proves it holds it. */
  publicKey: string;
  /** The cluster's mesh password (0.5 only; password.ts), sent in the handshake. */
  password?: string;
}

export interface RenderOptions {
  major: Major;
  /** 128 hex chars (seed + public key). */
  privateKey: string;
  /** 64 hex chars; must be the public half of privateKey. */
  publicKey: string;
  listenPort: number;
  peers: readonly PeerSpec[];
  /** Keys allowed to peer with us: the cluster's. Our own key is always added (see renderConfig). */
  allowedPublicKeys: readonly string[];
  /** Path of the admin unix socket. */
  adminSocket: string;
  /** The cluster's mesh password (password.ts): on the listener and every peer; 0.5 only (0.4 has none: refused). */
  password?: string;
  /** TUN interface name; default "auto". */
  ifName?: string;
  mtu?: number;
}

const IF_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${what}: port must be an integer 1-65535, got ${port}`);
}

function checkKey(key: string, what: string): string {
  if (!isPublicKeyHex(key)) throw new Error(`${what}: not a Yggdrasil public key (64 hex characters): ${JSON.stringify(key)}`);
  return key.toLowerCase();
}

/**
 * The URI yggdrasil dials for `peer`, pinned to the peer's key (`?key=`): a machine that answers
 * on that address without the key is not accepted as the peer. The host goes through
 * `parseHost`, the check every entry point applies; throws when it fails (callers that build
 * many peers skip such a peer with `peerProblem` first, so one bad host cannot stop the rest).
 */
export function peerUri(peer: PeerSpec): string {
  const key = checkKey(peer.publicKey, `peer ${peer.host}`);
  checkPort(peer.port, `peer ${peer.host}`);
  const parsed = parseHost(peer.host);
  if (!parsed.ok) throw new Error(`peer ${describeHostProblem(peer.host, parsed.error)}`);
  const { kind, value } = parsed.value;
  // In a URI the zone's % must be escaped (RFC 6874).
  const host = kind === "ipv6" ? `[${value.replace("%", "%25")}]` : value;
  return `tcp://${host}:${peer.port}?key=${key}${passwordQuery(peer.password, "&")}`;
}

function passwordQuery(password: string | undefined, sep: "?" | "&"): string {
  if (password === undefined) return "";
  const problem = meshPasswordProblem(password);
  if (problem) throw new Error(problem);
  return `${sep}password=${password}`;
}

/** Why `peer` cannot be dialled (bad host, port or key), or undefined when `peerUri` accepts it. */
export function peerProblem(peer: PeerSpec): string | undefined {
  try {
    peerUri(peer);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * The yggdrasil config (JSON) for either major. Output is deterministic (peers and keys sorted,
 * duplicates removed) so that `configHash` only changes when the config means something else.
 *
 * Differences between the majors that matter here:
 * - 0.4 expects PrivateKey *and* PublicKey (without PublicKey, its -normaliseconf invents a
 *   random one). 0.5 derives everything from PrivateKey and has no PublicKey field.
 * - Only fields the major knows are written: 0.5.12 panics ("End of input while parsing an
 *   object") on some configs with a field it does not know.
 */
export function renderConfig(opts: RenderOptions): string {
  const privateKey = opts.privateKey.toLowerCase();
  if (!/^[0-9a-f]{128}$/.test(privateKey)) throw new Error("privateKey must be 128 hex characters");
  const publicKey = checkKey(opts.publicKey, "own key");
  if (privateKey.slice(64) !== publicKey) throw new Error("publicKey is not the public half of privateKey");
  checkPort(opts.listenPort, "listen");
  if (!opts.adminSocket.startsWith("/")) throw new Error(`adminSocket must be an absolute path, got ${JSON.stringify(opts.adminSocket)}`);
  const ifName = opts.ifName ?? "auto";
  if (ifName !== "auto" && ifName !== "none" && !IF_NAME.test(ifName)) throw new Error(`invalid interface name ${JSON.stringify(ifName)}`);
  const mtu = opts.mtu ?? 65535;
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) throw new Error(`mtu must be an integer 1280-65535, got ${mtu}`);

  // AllowedPublicKeys: [] means "accept everybody", the opposite of a closed mesh. Our own key
  // keeps the list non-empty for a cluster of one, and nobody else can present it.
  const allowed = [...new Set([publicKey, ...opts.allowedPublicKeys.map((k) => checkKey(k, "allowed key"))])].sort();
  if (opts.password !== undefined && opts.major === "0.4") throw new Error("Yggdrasil 0.4 has no link password");
  const peers = [...new Set(opts.peers.map((p) => peerUri(opts.password === undefined ? p : { ...p, password: opts.password })))].sort();

  const common = {
    Peers: peers,
    InterfacePeers: {},
    Listen: [`tcp://[::]:${opts.listenPort}${passwordQuery(opts.password, "?")}`],
    AdminListen: `unix://${opts.adminSocket}`,
    // Multicast would peer with anything on the LAN that speaks yggdrasil.
    MulticastInterfaces: [],
    AllowedPublicKeys: allowed,
  };
  const tail = { IfName: ifName, IfMTU: mtu, NodeInfoPrivacy: true, NodeInfo: {} };
  const config = opts.major === "0.4" ? { ...common, PublicKey: publicKey, PrivateKey: privateKey, ...tail } : { PrivateKey: privateKey, ...common, ...tail };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** sha256 of a rendered config, for "restart only when the config really changed". */
export function configHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
