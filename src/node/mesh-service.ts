import { createHash } from "node:crypto";
import { networkInterfaces } from "node:os";
import { readFileSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import { describeNeighbourProblem, memberName, readNeighbours, type Neighbour } from "../mesh/neighbours.ts";
import { YggdrasilAdmin, changePeers, dialNow, redial, waitForAdmin, type PeerInfo } from "../mesh/yggdrasil/admin.ts";
import { configHash, peerProblem, peerUri, renderConfig, type PeerSpec } from "../mesh/yggdrasil/config.ts";
import type { Identity } from "../mesh/yggdrasil/identity.ts";
import { meshPassword } from "../mesh/yggdrasil/password.ts";
import type { YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import type { FlatMapping } from "../config/flatten.ts";
import type { Logger } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import { hostAnswers } from "../util/tcp-probe.ts";
import type { NodePaths } from "./paths.ts";
import type { Supervisor } from "./supervisor.ts";
import { AllowedKeysRefresh } from "./allowed-refresh.ts";
import { LINK_WATCH, LinkWatchdog } from "./link-watchdog.ts";
import { AddressWatch } from "./address-watch.ts";
import { MovedNoticeListener, announceMove, canonicalIp, remoteEndpoint } from "./moved-notice.ts";
import { connectionFilter, destroySockets, localEndFilter } from "../mesh/socket-destroy.ts";
import { DialBackListener, requestDialBack, staleDialBacks, type DialedBack } from "./dial-back.ts";
import { addressForKey } from "../mesh/yggdrasil/address.ts";
import { withConfiguredKeys } from "./link-report.ts";
import type { ServiceSpec } from "./supervisor.ts";
import { makePrivateDir } from "../util/private-dir.ts";
import { StallWatch, readTcpTable, socketInodes } from "../mesh/stalled-peerings.ts";

export const YGGDRASIL_SERVICE = "yggdrasil";

/** How long a restarted yggdrasil may have fewer than 2 peers up before it dials every neighbour. */
const WIDEN_AFTER_MS = 20_000;
/**
 * How often yggdrasil's TCP table is looked at for stalled peerings (closeStalledPeerings): a
 * read of /proc, well under a millisecond, so four times a second puts the close within a
 * quarter second of the stall rule being met (at one look a second, with ss, the cut peerings
 * of a chaos partition closed 1–2 s after the cut).
 */
const STALL_LOOK_MS = 250;

/** This machine's non-loopback IP addresses, except Yggdrasil's own (200::/7). */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && !/^2[0-9a-f]{2}:/i.test(a.address) && !a.address.startsWith("fe80:")) out.add(a.address);
  }
  return out;
}

/** How many neighbours a node dials when it has more (they dial it too, so links ≈ 2× this). */
export const MAX_DIALED_PEERS = 8;

/** A pair's rank, the same from both ends: rendezvous hashing on the two keys. */
function pairScore(a: string, b: string): string {
  return createHash("sha256")
    .update(a < b ? `${a}${b}` : `${b}${a}`)
    .digest("hex");
}

/**
 * Every other node with an advertised host that has not left: the nodes this one could dial.
 * A peer `peerUri` would refuse is left out (and handed to `skipped`), so that one bad entry
 * cannot stop the config from being written for all the others.
 */
export function dialCandidates(neighbours: readonly Neighbour[], self: string, skipped?: (peer: PeerSpec, why: string) => void): PeerSpec[] {
  const out: PeerSpec[] = [];
  for (const n of neighbours) {
    if (n.publicKey === self || n.left || !n.host) continue;
    const peer = { host: n.host, port: n.yggdrasilPort, publicKey: n.publicKey };
    const why = peerProblem(peer);
    if (why === undefined) out.push(peer);
    else skipped?.(peer, why);
  }
  return out;
}

/**
 * The neighbours of a mapping and the peers this node dials, with one line per neighbour field
 * that could not be used (see readNeighbours): the rest of the cluster is peered regardless.
 */
export function planPeers(mapping: FlatMapping, self: string, max = MAX_DIALED_PEERS): PeerPlan {
  // A frozen mapping (the agent's config copy) is planned once: the plan is asked every tick.
  const frozen = Object.isFrozen(mapping);
  const key = `${self}|${max}`;
  const hit = frozen ? plannedFor.get(mapping) : undefined;
  if (hit?.key === key) return hit.plan;
  const plan = planPeersNow(mapping, self, max);
  if (frozen) plannedFor.set(mapping, { key, plan });
  return plan;
}

/** What planPeers found; shared between callers of one frozen mapping, so never to be changed. */
export interface PeerPlan {
  readonly neighbours: readonly Neighbour[];
  readonly peers: readonly PeerSpec[];
  readonly problems: readonly string[];
}

const plannedFor = new WeakMap<FlatMapping, { key: string; plan: PeerPlan }>();

function planPeersNow(mapping: FlatMapping, self: string, max: number): PeerPlan {
  const { neighbours, problems } = readNeighbours(mapping);
  const lines = problems.map(describeNeighbourProblem);
  dialCandidates(neighbours, self, (peer, why) => lines.push(`neighbour ${peer.publicKey}: ${why}; it is not dialled.`));
  return { neighbours, peers: desiredPeers(neighbours, self, max), problems: lines };
}

/** The `max` best-ranked candidates of `self`. */
function topPicks(candidates: readonly PeerSpec[], self: string, max: number): PeerSpec[] {
  return candidates
    .filter((p) => p.publicKey !== self)
    .map((p) => ({ p, score: pairScore(self, p.publicKey) }))
    .sort((x, y) => (x.score < y.score ? -1 : x.score > y.score ? 1 : 0))
    .slice(0, max)
    .map((x) => x.p);
}

/**
 * Neighbours we dial: all of them in a small cluster; beyond MAX_DIALED_PEERS, a stable pick
 * per node (the best-ranked pairs), so a big cluster is a well-connected random graph that
 * Yggdrasil routes over instead of n² links — 50 nodes dialling each other made every
 * yggdrasil and the machine busy with keepalives alone.
 *
 * A link is dialled from both ends: we dial our picks and every node that picks us. A joining
 * node's dial is refused until the other's yggdrasil allows its key (which takes a restart),
 * but the other side dials the newcomer, whose allowed keys already list it — so a node joining
 * a big cluster needs nobody to restart.
 */
export function desiredPeers(neighbours: readonly Neighbour[], self: string, max = MAX_DIALED_PEERS): PeerSpec[] {
  const all = dialCandidates(neighbours, self);
  if (all.length <= max) return all;
  // n² hashes: computed once per distinct neighbour list, not on every agent tick.
  const memoKey = `${self}|${max}|${neighbours.map((n) => `${n.publicKey}@${n.host ?? ""}:${n.yggdrasilPort}${n.left ? "-" : ""}`).sort().join(",")}`;
  if (memo?.key === memoKey) return memo.peers;
  const peers = pickLinks(neighbours, all, self, max);
  memo = { key: memoKey, peers };
  return peers;
}

let memo: { key: string; peers: PeerSpec[] } | undefined;

function pickLinks(neighbours: readonly Neighbour[], all: PeerSpec[], self: string, max: number): PeerSpec[] {
  const mine = new Set(topPicks(all, self, max).map((p) => p.publicKey));
  // Their candidates are ours minus them plus us (when we have a host to be dialled on).
  const selfSpec = neighbours.find((n) => n.publicKey === self && !n.left && n.host);
  const everyone: PeerSpec[] = selfSpec ? [...all, { host: selfSpec.host as string, port: selfSpec.yggdrasilPort, publicKey: self }] : all;
  return all.filter((p) => mine.has(p.publicKey) || (selfSpec !== undefined && topPicks(everyone, p.publicKey, max).some((q) => q.publicKey === self)));
}

/**
 * AllowedPublicKeys cannot change while yggdrasil runs, and a restart drops every peering for
 * a moment, so restart only when it matters: a key that must go (removed neighbour), or a new
 * neighbour that cannot be dialled (no advertised host, e.g. behind NAT) and so must be able
 * to dial in. New neighbours with a host are dialled from here instead, which needs no restart.
 */
export function needsAllowedRestart(runningAllowed: readonly string[], active: readonly Neighbour[], self: string): boolean {
  const running = new Set(runningAllowed);
  const wanted = new Set(active.map((n) => n.publicKey));
  if ([...running].some((k) => k !== self && !wanted.has(k))) return true;
  return active.some((n) => n.publicKey !== self && !n.host && !running.has(n.publicKey));
}

function uriOfRemote(remote: string, key: string): string {
  return `${remote}?key=${key}`;
}

/**
 * Keeps yggdrasil running with this node's identity and the cluster's keys. The config file
 * always lists every peer (a restart comes back with all of them); peers that appear while it
 * runs are dialled through the admin socket instead of restarting it. What needs a restart —
 * a new allowed key (so a node behind NAT can dial in), a new port, a removed peer on 0.4 — is
 * applied by restarting, at most once per `minRestartIntervalMs`.
 */
export class MeshService {
  private lastRestart = 0;
  private readonly allowedRefresh = new AllowedKeysRefresh();
  /** Dialling every candidate, not just the picks (see ensure). */
  private widened = false;
  private desired: readonly PeerSpec[] = [];
  private syncing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly lastDial = new Map<string, number>();
  private readonly admin: YggdrasilAdmin;
  private readonly watchdog = new LinkWatchdog();
  private readonly addressWatch: AddressWatch;
  /** The agent liveness port the link watchdog probes peers on (the cluster's meshnet/agent/port). */
  private probePort: number | undefined;
  private lastProbe = 0;
  private probing = false;
  /** A look for stalled peerings (closeStalledPeerings) is under way. */
  private reaping = false;
  /** The stalled-peerings look's own timer (every STALL_LOOK_MS). */
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly stalls = new StallWatch();
  /** What getPeers said at the last look. */
  private lastPeers: readonly PeerInfo[] = [];
  /** Where yggdrasil listens for peerings (the cluster's meshnet/yggdrasil/port), once ensured. */
  private listenPort: number | undefined;
  /** Moved notices from peers whose address changed (moved-notice.ts), on the probe port's number. */
  private readonly notices: MovedNoticeListener;
  /** Dial-back requests from neighbours that moved (dial-back.ts), on the Yggdrasil port's number. */
  private readonly dialBack: DialBackListener;
  /** Peerings dialled on dial-back requests, by URI, until staleDialBacks says they may go. */
  private readonly dialedBack = new Map<string, DialedBack>();
  /** The cluster's mesh password as last ensured (0.5), for the peerings dialled back. */
  private password: string | undefined;
  /** Where the neighbours (not this node, not left) are dialled, as last ensured: where dial-back requests go. */
  private neighbourEnds: readonly { host: string; port: number }[] = [];
  /** The yggdrasil service as last ensured, for a restart by the link watchdog. */
  private lastSpec: ServiceSpec | undefined;
  /** Told what getPeers said at each look (the link report: node/step-links.ts). */
  private peersListener: ((peers: PeerInfo[]) => void) | undefined;

  constructor(
    private readonly paths: NodePaths,
    private readonly info: YggdrasilInfo,
    private readonly identity: Identity,
    private readonly supervisor: Supervisor,
    private readonly log: Logger,
    private readonly minRestartIntervalMs = 3000,
  ) {
    this.admin = new YggdrasilAdmin(paths.yggdrasilSocket, info.major, { timeoutMs: 2000 });
    this.addressWatch = new AddressWatch(() => void this.addressesChanged(), log);
    this.notices = new MovedNoticeListener(() => this.admin.getPeers(), log);
    this.dialBack = new DialBackListener(
      {
        wants: (key) => this.desired.some((p) => p.publicKey === key),
        dial: async (key, host, port) => {
          const uri = peerUri({ host, port, publicKey: key, ...(this.password === undefined ? {} : { password: this.password }) });
          await dialNow(this.admin, uri);
          this.dialedBack.set(uri, { uri, publicKey: key, at: Date.now() });
        },
      },
      log,
    );
  }

  /**
   * This machine's addresses changed (address-watch.ts), between the agent's ticks: an address
   * that went away takes the peerings bound to it along, so they are made again at once from
   * what is left — on 0.5 by removing and adding each outbound peering (yggdrasil keeps running,
   * so connections over the mesh keep their sessions), on 0.4 by restarting yggdrasil (the rule
   * ensure() applies at a tick); a new address alone gets every peer that is down dialled now.
   * Never throws.
   */
  private async addressesChanged(): Promise<void> {
    const now = localAddresses();
    const before = this.lastAddresses;
    this.lastAddresses = now;
    if (before === undefined || !this.lastSpec || !this.supervisor.isRunning(YGGDRASIL_SERVICE)) return;
    const gone = [...before].filter((a) => !now.has(a));
    try {
      const from = now.size > 0 ? [...now].join(", ") : "the next one";
      if (gone.length > 0 && this.admin.supportsLivePeerChanges) {
        // 0.5 closes a peering on removePeer: every outbound one is made again from the new
        // address, and the process (its sessions, so open connections over the mesh) stays.
        // The peerings others made to the gone address are dead too, but yggdrasil would keep
        // sending into them until its timeout: they are closed here, and the peers told.
        this.log.info(`local address ${gone.join(", ")} went away: re-peering from ${from}`);
        const listenPort = this.listenPort;
        if (listenPort !== undefined) for (const a of gone) await destroySockets(localEndFilter(a, listenPort), this.log);
        for (const p of this.desired) await redial(this.admin, peerUri(p)).catch((e: unknown) => this.log.debug(`yggdrasil re-peer: ${errorMessage(e)}`));
        this.lastDial.clear();
        this.tellPeersWeMoved(gone);
        this.askDialBack();
        return;
      }
      if (gone.length > 0) {
        // 0.4 keeps a peering bound to a gone address until it times out: start over.
        this.log.info(`local address ${gone.join(", ")} went away: restarting yggdrasil to re-peer from ${from}`);
        await this.supervisor.ensure(this.lastSpec, { restart: true });
        this.lastRestart = Date.now();
        await waitForAdmin(this.paths.yggdrasilSocket, this.info.major, 10_000);
      } else if ([...now].some((a) => !before.has(a))) {
        this.lastDial.clear();
      }
      if (this.desired.length > 0) await this.syncPeers(this.desired);
      if (gone.length > 0) {
        this.tellPeersWeMoved(gone);
        this.askDialBack();
      }
    } catch (e) {
      this.log.warn(`re-peering after an address change: ${errorMessage(e)}`);
    }
  }

  /**
   * Sends the moved notice (moved-notice.ts) for `gone` to every peer this node was linked to
   * or dials, in the background over the next seconds. Never throws.
   */
  private tellPeersWeMoved(gone: readonly string[]): void {
    const port = this.probePort;
    if (port === undefined) return;
    const targets = [...this.lastPeers.filter((p) => p.address).map((p) => p.address), ...this.desired.map((p) => addressForKey(p.publicKey))];
    void announceMove(targets, port, gone, this.log).catch((e: unknown) => this.log.debug(`moved notice: ${errorMessage(e)}`));
  }

  /**
   * Asks every neighbour to dial this node at its new address (dial-back.ts), in the background
   * over the next seconds: those whose Yggdrasil predates this node's key refuse it when it
   * dials in. Never throws.
   */
  private askDialBack(): void {
    const port = this.listenPort;
    if (port === undefined) return;
    void requestDialBack(this.neighbourEnds, this.identity, port, this.log).catch((e: unknown) => this.log.debug(`dial-back request: ${errorMessage(e)}`));
  }

  private lastAddresses: Set<string> | undefined;
  /** Keys of the peers that were up at the last look. */
  private connected = new Set<string>();

  get major() {
    return this.info.major;
  }

  /** Problems already warned about, so a bad neighbour entry is logged once, not every tick. */
  private warned = new Set<string>();

  private warnOnce(problems: readonly string[]): void {
    for (const p of problems) if (!this.warned.has(p)) this.log.warn(p);
    this.warned = new Set(problems);
  }

  /**
   * Keeps yggdrasil running as `mapping` and `listenPort` say (see the class comment);
   * `probePort`, when given, is where the link watchdog (node/link-watchdog.ts) probes peers.
   */
  async ensure(mapping: FlatMapping, listenPort: number, probePort?: number): Promise<{ started: boolean }> {
    if (probePort !== undefined) this.probePort = probePort;
    this.listenPort = listenPort;
    const planned = planPeers(mapping, this.identity.publicKey);
    const { neighbours, problems } = planned;
    this.warnOnce(problems);
    // The cluster's mesh password (0.5: every link's handshake carries it; 0.4 has none).
    const password = this.info.major === "0.5" ? meshPassword(mapping) : undefined;
    this.password = password;
    const withPassword = (ps: readonly PeerSpec[]): PeerSpec[] => (password === undefined ? [...ps] : ps.map((p) => ({ ...p, password })));
    const peers = withPassword(planned.peers);
    const active = neighbours.filter((n) => !n.left);
    this.neighbourEnds = active.filter((n) => n.publicKey !== this.identity.publicKey && n.host !== undefined).map((n) => ({ host: n.host as string, port: n.yggdrasilPort }));
    await this.dialBack.ensure(listenPort);
    const allowed = active.map((n) => n.publicKey);
    const common = {
      major: this.info.major,
      privateKey: this.identity.privateKey,
      publicKey: this.identity.publicKey,
      listenPort,
      allowedPublicKeys: allowed,
      adminSocket: this.paths.yggdrasilSocket,
      ...(password === undefined ? {} : { password }),
    };
    // renderConfig adds the password to the peers itself.
    const text = renderConfig({ ...common, peers: planned.peers });
    // Neither peers nor allowed keys are part of the restart hash: see needsAllowedRestart.
    const restartHash = configHash(renderConfig({ ...common, peers: [], allowedPublicKeys: [] }));
    makePrivateDir(this.paths.yggdrasilDir);
    makePrivateDir(this.paths.runDir);
    let onDisk: string | undefined;
    try {
      onDisk = readFileSync(this.paths.yggdrasilConfig, "utf8");
    } catch {
      onDisk = undefined;
    }
    if (onDisk !== text) await writeFileAtomic(this.paths.yggdrasilConfig, text, { mode: 0o600, fsync: true });

    const running = this.supervisor.isRunning(YGGDRASIL_SERVICE);
    const runningHash = running ? this.supervisor.hashOf(YGGDRASIL_SERVICE) : undefined;
    const runningAllowed = (this.supervisor.metaOf(YGGDRASIL_SERVICE)?.["allowed"] as string[] | undefined) ?? [];
    // A local address that went away (the machine moved network) leaves peerings bound to it
    // looking up until they time out, a minute or more: start over from the new addresses.
    const addresses = localAddresses();
    const previousAddresses = this.lastAddresses;
    const moved = previousAddresses !== undefined && [...previousAddresses].some((a) => !addresses.has(a));
    this.lastAddresses = addresses;
    if (moved && running) this.log.info("a local address went away: restarting yggdrasil to re-peer from the new one");
    // A new neighbour that stays unconnected can only come in itself: see AllowedKeysRefresh.
    const candidates = withPassword(dialCandidates(neighbours, this.identity.publicKey));
    const links = this.widened ? candidates : peers;
    const missing = allowed.filter((k) => k !== this.identity.publicKey && !runningAllowed.includes(k));
    // Which peers are up, asked now rather than taken from the peer loop's last look: a restart
    // drops every link, so it must never follow from a stale view (yggdrasil restarted for keys
    // whose links were in fact up, at the moment another member restarted, left links that
    // carried nothing). When yggdrasil does not answer, no restart is decided on this tick.
    const fresh = running && missing.length > 0 ? await this.admin.getPeers().catch(() => undefined) : undefined;
    if (fresh) this.connected = new Set(fresh.filter((p) => p.up && p.publicKey).map((p) => p.publicKey));
    // A restart the interval below would put off is not counted, so the next tick decides again.
    const canRestart = running && Date.now() - this.lastRestart >= this.minRestartIntervalMs;
    const lockedOut = (!running || missing.length === 0 || fresh !== undefined) && this.allowedRefresh.due({ missing, connected: this.connected, links: links.map((p) => p.publicKey), running: canRestart });
    if (lockedOut && canRestart) this.log.info(`${missing.length} neighbour key(s) not connected and not allowed in yet: restarting yggdrasil to let them dial in`);
    const allowedChanged = running && (needsAllowedRestart(runningAllowed, active, this.identity.publicKey) || moved || lockedOut);
    const needsRestart = running && (runningHash !== restartHash || allowedChanged);
    if (needsRestart && Date.now() - this.lastRestart < this.minRestartIntervalMs) {
      // Coalesce bursts of changes (many nodes joining) into one restart.
      this.lastAddresses = previousAddresses;
      return { started: false };
    }
    this.lastSpec = {
      name: YGGDRASIL_SERVICE,
      command: this.info.binary,
      args: ["-useconffile", this.paths.yggdrasilConfig, "-logto", "stdout"],
      configHash: restartHash,
      meta: { allowed: [...allowed].sort() },
    };
    const outcome = await this.supervisor.ensure(this.lastSpec, { restart: allowedChanged });
    if (outcome !== "running") {
      this.lastRestart = Date.now();
      this.log.info(`yggdrasil ${outcome} (${this.info.major}, ${peers.length} peer(s), ${allowed.length} allowed key(s))`);
      await waitForAdmin(this.paths.yggdrasilSocket, this.info.major, 10_000);
      return { started: true };
    }
    // A node whose picks it cannot reach (partial reachability: NAT, firewalls, jump hosts)
    // widens to every candidate once its yggdrasil has run a while with fewer than 2 peers up.
    if (!this.widened && candidates.length > peers.length && Date.now() - this.lastRestart > WIDEN_AFTER_MS && this.connected.size < 2) {
      this.widened = true;
      this.log.info(`only ${this.connected.size} peer(s) up: dialling all ${candidates.length} neighbours`);
    }
    this.desired = this.widened ? candidates : peers;
    await this.syncPeers(this.desired);
    return { started: false };
  }

  /**
   * Peers that are down get re-dialled every second or two, between agent ticks: a node that
   * just joined (or restarted) is dialled from here at once, since it cannot dial in until our
   * yggdrasil knows its key. One getPeers over the admin socket per second costs next to nothing.
   */
  startPeerLoop(intervalMs = 1000): void {
    if (this.timer) return;
    this.addressWatch.start();
    this.timer = setInterval(() => {
      if (this.syncing || this.desired.length === 0 || !this.supervisor.isRunning(YGGDRASIL_SERVICE)) return;
      this.syncing = true;
      void this.syncPeers(this.desired).finally(() => {
        this.syncing = false;
      });
      if (!this.probing && this.probePort !== undefined && Date.now() - this.lastProbe >= LINK_WATCH.probeEveryMs) {
        this.probing = true;
        this.lastProbe = Date.now();
        void this.watchLinks(this.probePort).finally(() => {
          this.probing = false;
        });
      }
    }, intervalMs);
    this.timer.unref();
    this.stallTimer = setInterval(() => {
      if (this.reaping || !this.supervisor.isRunning(YGGDRASIL_SERVICE)) return;
      this.reaping = true;
      void this.closeStalledPeerings().finally(() => {
        this.reaping = false;
      });
    }, STALL_LOOK_MS);
    this.stallTimer.unref();
  }

  stopPeerLoop(): void {
    this.addressWatch.stop();
    this.notices.stop();
    this.dialBack.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.stallTimer = undefined;
  }

  /**
   * Removes from Yggdrasil's configured peers the dialled-back peerings staleDialBacks names (on
   * 0.5; 0.4 cannot remove a peer live, and its next restart forgets them). Never throws.
   */
  private async forgetStaleDialBacks(current: readonly PeerInfo[], wanted: ReadonlySet<string>): Promise<void> {
    if (this.dialedBack.size === 0) return;
    const wantsKey = (k: string) => this.desired.some((p) => p.publicKey === k);
    for (const d of staleDialBacks([...this.dialedBack.values()], current, wanted, wantsKey, Date.now())) {
      this.dialedBack.delete(d.uri);
      if (!this.admin.supportsLivePeerChanges) continue;
      await this.admin.removePeer(d.uri).catch((e: unknown) => this.log.debug(`yggdrasil: forgetting the dialled-back ${d.uri}: ${errorMessage(e)}`));
    }
  }

  /** Dial configured peers that are not connected; drop peers that are no longer neighbours. */
  private async syncPeers(peers: readonly PeerSpec[]): Promise<void> {
    let current;
    try {
      current = await this.admin.getPeers();
    } catch (e) {
      this.log.debug(`yggdrasil admin: ${errorMessage(e)}`);
      return;
    }
    this.lastPeers = current;
    // Down peerings named by the key they were configured with (0.5 lists them without one).
    this.peersListener?.(withConfiguredKeys(current, peers));
    const wanted = new Map(peers.map((p) => [peerUri(p), p]));
    const connectedKeys = new Set(current.filter((p) => p.up && p.publicKey).map((p) => p.publicKey));
    this.connected = connectedKeys;
    const down = [...wanted.entries()].filter(([, p]) => !connectedKeys.has(p.publicKey)).map(([uri]) => uri);
    const now = Date.now();
    for (const uri of down) {
      // Re-dial every peer that is down, but not more often than every 2 s each.
      if (now - (this.lastDial.get(uri) ?? 0) < 2000) continue;
      this.lastDial.set(uri, now);
      try {
        // Never a remove-and-add here: that would cut a connection still being made.
        await dialNow(this.admin, uri);
      } catch (e) {
        this.log.debug(`yggdrasil redial ${uri}: ${errorMessage(e)}`);
      }
    }
    await this.forgetStaleDialBacks(current, new Set(wanted.keys()));
    // Only outbound peers we configured can be removed; inbound ones are governed by AllowedPublicKeys.
    const wantedKeys = new Set(peers.map((p) => p.publicKey));
    const remove = current
      .filter((p) => p.inbound === false && p.publicKey && !wantedKeys.has(p.publicKey))
      .map((p) => uriOfRemote(p.remote, p.publicKey));
    if (remove.length === 0) return;
    try {
      const r = await changePeers(this.admin, { remove });
      if (r.restartRequired) this.log.debug("yggdrasil: removed peers leave at the next restart (0.4)");
    } catch (e) {
      // "already configured": the dial is in progress; nothing to do.
      this.log.debug(`yggdrasil peer change: ${errorMessage(e)}`);
    }
  }

  /**
   * One round of the link watchdog (node/link-watchdog.ts): every peer with a link up is probed
   * over the mesh on `port`; a peer linked but unreachable is re-peered, and yggdrasil restarted
   * when no linked peer is reachable, as LinkWatchdog decides. Never throws.
   */
  private async watchLinks(port: number): Promise<void> {
    const linked = new Map<string, string>();
    for (const p of this.lastPeers) if (p.up && p.publicKey && p.address) linked.set(p.publicKey, p.address);
    const round = new Map<string, boolean>();
    await Promise.all([...linked].map(async ([key, address]) => round.set(key, await hostAnswers(address, port, LINK_WATCH.timeoutMs))));
    const verdict = this.watchdog.judge(round, Date.now());
    if (verdict.restart && this.lastSpec && this.supervisor.isRunning(YGGDRASIL_SERVICE)) {
      this.log.warn(`none of the ${round.size} peer(s) linked to this node has answered over the mesh for ${LINK_WATCH.restartAfterMs / 1000} s: restarting yggdrasil`);
      try {
        await this.supervisor.ensure(this.lastSpec, { restart: true });
        this.lastRestart = Date.now();
        await waitForAdmin(this.paths.yggdrasilSocket, this.info.major, 10_000);
      } catch (e) {
        this.log.warn(`restarting yggdrasil: ${errorMessage(e)}`);
      }
      return;
    }
    for (const key of verdict.repeer) {
      this.log.warn(`${memberName(key)} is linked to this node but has not answered over the mesh for ${LINK_WATCH.repeerAfterMs / 1000} s: re-peering it`);
      // The peering as configured (with the password, if any), else as getPeers shows it.
      const spec = this.desired.find((p) => p.publicKey === key);
      const uris = spec ? [peerUri(spec)] : this.lastPeers.filter((p) => p.publicKey === key && p.inbound === false).map((p) => uriOfRemote(p.remote, key));
      for (const uri of new Set(uris)) {
        try {
          await redial(this.admin, uri);
        } catch (e) {
          this.log.debug(`yggdrasil re-peer ${uri}: ${errorMessage(e)}`);
        }
      }
    }
  }

  /**
   * Closes yggdrasil's peering connections that the kernel sees stalled — data waiting while
   * TCP's sends go unanswered (mesh/stalled-peerings.ts) — so yggdrasil routes around them now
   * rather than at its own link timeout; it dials them again, as does the peer loop. Looks at
   * the connections on the cluster's Yggdrasil port and the peers' ports only, in yggdrasil's
   * TCP table; its fds are read only when one has a send unanswered. Never throws: without ss's
   * socket destroy the peerings close at yggdrasil's timeout.
   */
  private async closeStalledPeerings(): Promise<void> {
    const pid = this.supervisor.pid(YGGDRASIL_SERVICE);
    if (pid === undefined || this.listenPort === undefined) return;
    const now = Date.now();
    const conns = readTcpTable(pid, [...new Set([this.listenPort, ...this.desired.map((p) => p.port)])]) ?? [];
    const stalled = this.stalls.observe(conns, conns.some((c) => c.sendQueue > 0 && c.unanswered > 0) ? socketInodes(pid) : new Set(), now);
    for (const c of stalled) {
      const host = canonicalIp(c.peer.host);
      const peer = this.lastPeers.find((p) => {
        const end = remoteEndpoint(p.remote);
        return end?.host === host && end.port === c.peer.port;
      });
      const who = peer?.publicKey ? `${memberName(peer.publicKey)} at ${host}` : host;
      if (await destroySockets(connectionFilter(c), this.log)) {
        this.log.warn(
          `the peering with ${who} has had data unanswered for at least ${(this.stalls.heldMs(c, now) / 1000).toFixed(1)} s (${c.unanswered} TCP sends in a row without an answer): closed it, so yggdrasil routes around it now; it is dialled again`,
        );
      }
    }
  }

  /** getPeers now, down peerings named by the key they were configured with (see withConfiguredKeys). */
  async peers(): Promise<PeerInfo[]> {
    return withConfiguredKeys(await this.admin.getPeers(), this.desired);
  }

  /** `listener` is told what getPeers said at each look of the peer loop (every second while it has peers to keep). */
  watchPeers(listener: (peers: PeerInfo[]) => void): void {
    this.peersListener = listener;
  }

  /**
   * 0.5: this node's parent in Yggdrasil's spanning tree (its own key when it is the root);
   * undefined on 0.4, which has none to ask for, or when this node is not in its own tree yet.
   * @throws YggdrasilAdminError when yggdrasil does not answer.
   */
  async treeParent(): Promise<string | undefined> {
    if (this.info.major !== "0.5") return undefined;
    const self = this.identity.publicKey.toLowerCase();
    return (await this.admin.getTree()).find((e) => e.publicKey === self)?.parent;
  }

  /** Receives peers' moved notices on [meshAddress]:port (moved-notice.ts). Never throws. */
  async listenForNotices(meshAddress: string, port: number): Promise<void> {
    await this.notices.ensure(meshAddress, port);
  }
}
