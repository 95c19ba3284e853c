import { createConnection } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { UserError, errorMessage } from "../../util/errors.ts";
import { isPublicKeyHex } from "./address.ts";
import type { Major } from "./version.ts";

/*
 * Yggdrasil's admin socket, as observed on 0.4.7 (Debian 12) and 0.5.12 (Debian trixie):
 *
 * - One JSON object per request: {"request": NAME, "arguments": {...}, "keepalive": false}.
 *   Names are case-insensitive. Without keepalive the server answers once and closes.
 * - The answer is *pretty-printed* JSON (it spans lines, so it cannot be split on "\n"):
 *   {"status": "success"|"error", "error"?: TEXT, "request": ECHO, "response": {...}|null}.
 *   0.4 echoes "request": null, 0.5 echoes the request.
 * - getSelf: both {"key", "address", "subnet", "build_version", ...}; 0.4 adds "coords",
 *   0.5 "routing_entries".
 * - getPeers: {"peers": [...]}.
 *   0.4 lists connected peers only, one per key: {"key", "address", "remote", "port",
 *   "priority", "coords", "bytes_recvd", "bytes_sent", "uptime"}; it says nothing about
 *   direction and measures no latency.
 *   0.5 also lists configured peers that are down: {"remote", "up", "inbound", "key" ("" while
 *   down), "address" (absent while down), "port" (0 while down), "priority", "cost",
 *   "bytes_recvd", "bytes_sent", "rate_recvd"?, "rate_sent"? (bytes/s, not on every peering),
 *   "uptime", "latency", "last_error"?, "last_error_time"?}. Two members that dial each other
 *   are two peerings on 0.5 (one outbound, one inbound, sharing the one "port" of that key).
 *   Units, as measured on 0.4.7 and 0.5.12: "uptime" seconds (a float); "latency" and
 *   "last_error_time" Go durations, i.e. integer *nanoseconds* ("last_error_time" is how long
 *   ago the error was: it stays on a peering that came up since); bytes are since the peering
 *   came up. "port" is the peering's switch port on the answering node.
 *   Both write "remote" without the ?key= query: "tcp://198.18.0.1:4863"; for an inbound
 *   peering it is the address and source port the other end came from.
 * - getTree (0.5 only): {"tree": [{"key", "parent", "address", "sequence"}]}, every node of the
 *   spanning tree this node knows, the root being its own parent. (0.5's getPaths lists, per
 *   destination with a session, that destination's *coordinates* — the ports from the tree's
 *   root down to it — not a route from here: it is not used.)
 * - addPeer / removePeer {"uri", "interface"?}: both versions have them, and addPeer dials at
 *   once on both. removePeer on 0.5 drops the connection. On 0.4.7 removePeer answers
 *   "success" but the connection stays up and is re-dialled after it breaks, until yggdrasil
 *   restarts: peers cannot be removed live on 0.4. Repeating an addPeer/removePeer answers
 *   "peer (is) already configured" / "peer (is) not configured".
 */

export interface SelfInfo {
  publicKey: string;
  address: string;
  /** e.g. "301:9e3:2644:fad9::/64". */
  subnet: string;
  /** "unknown" on Debian's 0.4 build. */
  buildVersion: string;
}

export interface PeerInfo {
  /** "" for a configured peer that is not connected (0.5 only lists those). */
  publicKey: string;
  /** "" for a configured peer that is not connected. */
  address: string;
  /** The peer's URI without the ?key= query; for an inbound peer, its source address and port. */
  remote: string;
  up: boolean;
  /** null on 0.4, which does not report the direction of a peering. */
  inbound: boolean | null;
  /** 0.5: why the last connection attempt failed (it stays after the peering came up since). */
  lastError?: string;
  /** 0.5: how long ago that failure was, seconds. */
  lastErrorAgeSeconds?: number;
  /** This node's switch port for the peer (0.5 shares one between two peerings with one key); absent while down. */
  port?: number;
  /** Bytes received from / sent to the peer over this peering since it came up. */
  rxBytes?: number;
  txBytes?: number;
  /** 0.5, on the peering that carries the traffic: bytes per second now. */
  rxRate?: number;
  txRate?: number;
  /** How long this peering has been up, seconds. */
  uptimeSeconds?: number;
  /** 0.5: the round-trip latency Yggdrasil measured, milliseconds. */
  latencyMs?: number;
}

/** One node of Yggdrasil 0.5's spanning tree: its key and its parent's (the root is its own parent). */
export interface TreeEntry {
  publicKey: string;
  parent: string;
}

export type AdminErrorKind = "not-running" | "permission" | "timeout" | "protocol" | "refused-request" | "unsupported";

/**
 * A request on yggdrasil's admin socket that failed; `kind` says how. For "refused-request",
 * `reply` is yggdrasil's own error text (it has no error codes): callers that must tell one
 * refusal from another look at that, never at the message, which names the socket path too.
 */
export class YggdrasilAdminError extends UserError {
  constructor(
    readonly kind: AdminErrorKind,
    message: string,
    readonly reply = "",
  ) {
    super(message);
    this.name = "YggdrasilAdminError";
  }
}

export interface AdminOptions {
  /** Per request; default 5 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
// getPeers of a large node is a few hundred kB; anything far beyond that is not yggdrasil.
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** A finite number ≥ 0 that yggdrasil sent, else undefined (a field this version does not give). */
function amount(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
}

const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;

/** `value` under `name`, left out when undefined (exactOptionalPropertyTypes). */
function opt<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

export class YggdrasilAdmin {
  /**
   * Whether removePeer takes effect without a restart (0.5). On 0.4 a peer can be added live but
   * only leaves after yggdrasil restarts with a config that no longer lists it: see changePeers.
   */
  readonly supportsLivePeerChanges: boolean;
  private readonly timeoutMs: number;

  constructor(
    readonly socketPath: string,
    readonly major: Major,
    opts: AdminOptions = {},
  ) {
    this.supportsLivePeerChanges = major === "0.5";
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** One raw request; resolves to the "response" member of a successful answer. */
  request(name: string, args: Json = {}, timeoutMs = this.timeoutMs): Promise<unknown> {
    const path = this.socketPath;
    return new Promise((resolvePromise, rejectPromise) => {
      let buf = "";
      let settled = false;
      const socket = createConnection({ path });
      const finish = (error: YggdrasilAdminError | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (error) rejectPromise(error);
        else resolvePromise(value);
      };
      const timer = setTimeout(
        () => finish(new YggdrasilAdminError("timeout", `yggdrasil did not answer ${name} on its admin socket ${path} within ${timeoutMs} ms.`)),
        timeoutMs,
      );
      // Settles once the buffer holds a whole object; `final`: no more data will come.
      const tryParse = (final: boolean): void => {
        const text = buf.trim();
        if (!final && !text.endsWith("}")) return;
        let answer: unknown;
        try {
          answer = JSON.parse(text);
        } catch {
          if (final) finish(new YggdrasilAdminError("protocol", `yggdrasil's admin socket ${path} gave an unreadable answer to ${name}: ${JSON.stringify(text.slice(0, 200))}`));
          return;
        }
        if (!isObject(answer)) {
          finish(new YggdrasilAdminError("protocol", `yggdrasil's admin socket ${path} answered ${name} with something that is not a JSON object.`));
        } else if (answer["status"] === "success") {
          finish(undefined, answer["response"]);
        } else {
          const reason = str(answer["error"]) || `status ${JSON.stringify(answer["status"])}`;
          finish(new YggdrasilAdminError("refused-request", `yggdrasil refused ${name} (admin socket ${path}): ${reason}`, str(answer["error"])));
        }
      };
      socket.setEncoding("utf8");
      socket.on("connect", () => {
        socket.write(JSON.stringify({ request: name, arguments: args, keepalive: false }));
      });
      socket.on("data", (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_RESPONSE_BYTES) {
          finish(new YggdrasilAdminError("protocol", `yggdrasil's admin socket ${path} sent more than ${MAX_RESPONSE_BYTES} bytes for ${name}.`));
          return;
        }
        tryParse(false);
      });
      socket.on("end", () => {
        if (!settled) tryParse(true);
      });
      socket.on("close", () => {
        if (!settled) finish(new YggdrasilAdminError("protocol", `yggdrasil closed its admin socket ${path} without answering ${name}.`));
      });
      socket.on("error", (e: NodeJS.ErrnoException) => finish(connectError(path, e)));
    });
  }

  async getSelf(): Promise<SelfInfo> {
    const r = await this.request("getSelf");
    if (!isObject(r) || !isPublicKeyHex(str(r["key"]))) {
      throw new YggdrasilAdminError("protocol", `yggdrasil's getSelf answer on ${this.socketPath} has no public key: ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    return {
      publicKey: str(r["key"]).toLowerCase(),
      address: str(r["address"]),
      subnet: str(r["subnet"]),
      buildVersion: str(r["build_version"]) || "unknown",
    };
  }

  async getPeers(): Promise<PeerInfo[]> {
    const r = await this.request("getPeers");
    const peers = isObject(r) ? r["peers"] : undefined;
    // Go encodes an empty (nil) list as null.
    if (peers === null) return [];
    if (!Array.isArray(peers)) {
      throw new YggdrasilAdminError("protocol", `yggdrasil's getPeers answer on ${this.socketPath} has no peer list: ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    return peers.filter(isObject).map((p) => this.normalisePeer(p));
  }

  private normalisePeer(p: Json): PeerInfo {
    const publicKey = str(p["key"]).toLowerCase();
    const port = amount(p["port"]);
    // Counters and times, in the units above; a field the version lacks is left out.
    const figures = {
      // 0.5 writes port 0 for a peering that is down: no port.
      ...opt("port", port !== undefined && port > 0 && Number.isInteger(port) ? port : undefined),
      ...opt("rxBytes", amount(p["bytes_recvd"])),
      ...opt("txBytes", amount(p["bytes_sent"])),
      ...opt("rxRate", amount(p["rate_recvd"])),
      ...opt("txRate", amount(p["rate_sent"])),
      ...opt("uptimeSeconds", amount(p["uptime"])),
    };
    if (this.major === "0.4") {
      return { publicKey, address: str(p["address"]), remote: str(p["remote"]), up: true, inbound: null, ...figures };
    }
    const lastError = str(p["last_error"]);
    const latency = amount(p["latency"]);
    const errorAge = amount(p["last_error_time"]);
    const up = p["up"] === true;
    return {
      publicKey,
      address: str(p["address"]),
      remote: str(p["remote"]),
      up,
      inbound: p["inbound"] === true,
      ...(lastError ? { lastError, ...opt("lastErrorAgeSeconds", errorAge === undefined ? undefined : errorAge / NS_PER_S) } : {}),
      ...figures,
      // A peering that is down has measured nothing (0.5 writes 0).
      ...opt("latencyMs", up && latency !== undefined ? latency / NS_PER_MS : undefined),
    };
  }

  /**
   * Yggdrasil 0.5's spanning tree as this node knows it (every node it has heard of, with its
   * parent). On 0.4, which has no such request, throws kind "unsupported" without asking.
   * @throws YggdrasilAdminError as `request` does, or kind "protocol" for an answer without a tree.
   */
  async getTree(): Promise<TreeEntry[]> {
    if (this.major !== "0.5") throw new YggdrasilAdminError("unsupported", `Yggdrasil ${this.major} has no spanning tree to ask for (getTree is 0.5's).`);
    const r = await this.request("getTree");
    const tree = isObject(r) ? r["tree"] : undefined;
    if (tree === null) return [];
    if (!Array.isArray(tree)) {
      throw new YggdrasilAdminError("protocol", `yggdrasil's getTree answer on ${this.socketPath} has no tree: ${JSON.stringify(r)?.slice(0, 200)}`);
    }
    return tree
      .filter(isObject)
      .map((e) => ({ publicKey: str(e["key"]).toLowerCase(), parent: str(e["parent"]).toLowerCase() }))
      .filter((e) => isPublicKeyHex(e.publicKey) && isPublicKeyHex(e.parent));
  }

  /**
   * Adds a peer and dials it now. Adding a peer that is already configured is not an error:
   * the answer is then false. Throws YggdrasilAdminError for any other failure (its `kind`
   * says which), and a plain Error for a `uri` that is not a peer URI.
   */
  async addPeer(uri: string): Promise<boolean> {
    checkUri(uri);
    try {
      await this.request("addPeer", { uri, interface: "" });
      return true;
    } catch (e) {
      if (e instanceof YggdrasilAdminError && e.kind === "refused-request" && /already configured/.test(e.reply)) return false;
      throw e;
    }
  }

  /**
   * Removes a configured peer and drops the connection (0.5). yggdrasil matches `uri` against
   * the configured one as a string (a peerUri() result matches itself); a peer that is not
   * configured is not an error, the answer is then false. On 0.4 this throws kind "unsupported"
   * without asking yggdrasil, whose answer would be a misleading "success": render a config
   * without the peer and restart. Throws YggdrasilAdminError for any other failure too.
   */
  async removePeer(uri: string): Promise<boolean> {
    checkUri(uri);
    if (!this.supportsLivePeerChanges) {
      throw new YggdrasilAdminError(
        "unsupported",
        `Yggdrasil ${this.major} cannot remove a peer while running (it keeps the connection to ${uri}); write a config without it and restart yggdrasil.`,
      );
    }
    try {
      await this.request("removePeer", { uri, interface: "" });
      return true;
    } catch (e) {
      if (e instanceof YggdrasilAdminError && e.kind === "refused-request" && /not configured/.test(e.reply)) return false;
      throw e;
    }
  }
}

/**
 * Dials a configured peer that is not connected *now*, without touching a connection to it
 * that is up or being made. Yggdrasil retries a failed peer with a growing back-off (on 0.4 over
 * a minute), which is what makes a restarted or new node slow to reach. On 0.5, adding a peer
 * that is configured already cuts its back-off short ("kicks" it) and nothing else; on 0.4 the
 * peer is forgotten and added again (see redial). A peer not configured yet is added.
 * @throws YggdrasilAdminError as addPeer / redial do; Error for a `uri` that is no peer URI.
 */
export async function dialNow(admin: YggdrasilAdmin, uri: string): Promise<void> {
  if (!admin.supportsLivePeerChanges) return redial(admin, uri);
  checkUri(uri);
  await admin.addPeer(uri);
}

/**
 * Re-peers `uri`: forgets the peer and adds it again, so it is dialled afresh. On 0.5 that
 * closes a connection to it that is up — for a peering that is dead although it looks up (its
 * local address went away; the link watchdog) — so never use it on a healthy peer: dialNow
 * dials a peer that is down. On 0.4 a connected peer stays connected (0.4 cannot remove it)
 * and half-forgotten, so only for peers that are down there.
 * @throws YggdrasilAdminError for a failure other than "not configured"; Error for a bad `uri`.
 */
export async function redial(admin: YggdrasilAdmin, uri: string): Promise<void> {
  checkUri(uri);
  if (await admin.addPeer(uri)) return;
  try {
    await admin.request("removePeer", { uri, interface: "" });
  } catch (e) {
    if (!(e instanceof YggdrasilAdminError && e.kind === "refused-request")) throw e;
  }
  await admin.addPeer(uri);
}

function checkUri(uri: string): void {
  // 0.5 accepts any string and only fails when dialling ("link schema unknown"); catch it here.
  if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/.test(uri)) throw new Error(`not a peer URI: ${JSON.stringify(uri)}`);
}

function connectError(path: string, e: NodeJS.ErrnoException): YggdrasilAdminError {
  switch (e.code) {
    case "ENOENT":
      return new YggdrasilAdminError("not-running", `yggdrasil is not running (no admin socket at ${path}).`);
    case "ECONNREFUSED":
      return new YggdrasilAdminError("not-running", `yggdrasil is not running (stale admin socket at ${path}: nothing accepts connections on it).`);
    case "EACCES":
    case "EPERM":
      return new YggdrasilAdminError("permission", `cannot open yggdrasil's admin socket ${path}: permission denied. Run as root or as the user yggdrasil runs as.`);
    default:
      return new YggdrasilAdminError("protocol", `cannot talk to yggdrasil on its admin socket ${path}: ${errorMessage(e)}`);
  }
}

/**
 * Applies peer changes live where the running version allows it. Adds always happen live.
 * Removals happen live on 0.5; on 0.4 they cannot, and `restartRequired` tells the caller to
 * restart yggdrasil with a config that no longer lists the removed peers.
 */
export async function changePeers(
  admin: YggdrasilAdmin,
  change: { add?: readonly string[]; remove?: readonly string[] },
): Promise<{ restartRequired: boolean }> {
  for (const uri of change.add ?? []) await admin.addPeer(uri);
  const remove = change.remove ?? [];
  if (remove.length === 0) return { restartRequired: false };
  if (!admin.supportsLivePeerChanges) return { restartRequired: true };
  for (const uri of remove) await admin.removePeer(uri);
  return { restartRequired: false };
}

/**
 * Waits until yggdrasil answers getSelf on `socketPath` (it creates the socket a moment after
 * starting). Polls every 200 ms, at most until `timeoutMs` has passed.
 */
export async function waitForAdmin(socketPath: string, major: Major, timeoutMs: number): Promise<SelfInfo> {
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / 200) + 1;
  let last: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      return await new YggdrasilAdmin(socketPath, major, { timeoutMs: Math.min(left, DEFAULT_TIMEOUT_MS) }).getSelf();
    } catch (e) {
      last = e;
      if (e instanceof YggdrasilAdminError && e.kind === "permission") throw e;
    }
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
  }
  throw new YggdrasilAdminError(
    "timeout",
    `yggdrasil did not answer on its admin socket ${socketPath} within ${timeoutMs} ms (last error: ${last ? errorMessage(last) : "none"}). Check its log.`,
  );
}
