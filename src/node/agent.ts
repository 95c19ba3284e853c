import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Etcd3, Watcher } from "etcd3";
import type { FlatMapping } from "../config/flatten.ts";
import type { LocalConfig } from "../config/local.ts";
import { PendingChanges, applyOps } from "../config/pending.ts";
import type { CachePaths } from "../config/paths.ts";
import { mappingProblem } from "../config/store.ts";
import { createAvailabilityProbe, typeStatuses } from "../config/types.ts";
import { deadline, leaderOf, memberList, openClient, probeMemberList, realMemberList, type EtcdMember } from "../consensus/client.ts";
import { clientUrl, etcdServerArgs, grpcProxyArgs, neighbourEndpoints, peerUrl, voterEndpoints } from "../consensus/etcd-args.ts";
import { isEphemeralKey, readKvMapping, seedKvIfEmpty, updateKvMapping } from "../consensus/kv-config.ts";
import { caFromMapping, ensureNodeCertificate } from "../consensus/pki.ts";
import { planConsensus, type ConsensusPlan } from "../consensus/plan.ts";
import { NodeRegistration, readNodeRecords, type NodeRecord, type Role } from "../consensus/registry.ts";
import { KEYS, resolveSettings, type ClusterSettings } from "../consensus/settings.ts";
import { evictionPass } from "../consensus/gone.ts";
import { appendVoterLog, applyVoterAction, nextVoterAction, votersWithoutRecord } from "../consensus/voters.ts";
import { fireHook } from "../hooks/runner.ts";
import { memberName, mixedMajorProblem, parseNeighbours, sameNeighbour, selfNeighbour, withNeighbour } from "../mesh/neighbours.ts";
import { addressForKey, isPublicKeyHex } from "../mesh/yggdrasil/address.ts";
import { loadOrCreateIdentity, type Identity } from "../mesh/yggdrasil/identity.ts";
import { detectYggdrasil, yggdrasilBinary, type YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import { readAdvertised } from "./advertised.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { HookQueue } from "./hook-queue.ts";
import { readLastGoodSettings, sameSettings, writeLastGoodSettings } from "./last-good-settings.ts";
import { MeshService } from "./mesh-service.ts";
import type { NodePaths } from "./paths.ts";
import { writeStatus, type AgentStatus } from "./status.ts";
import { Supervisor } from "./supervisor.ts";

export const ETCD_SERVICE = "etcd";
export const PROXY_SERVICE = "etcd-proxy";

/** The host of an etcd URL (`https://[addr]:port` → addr). */
function hostOfUrl(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, "");
}

/** Nice value of an etcd member (the default is 0). */
const ETCD_PRIORITY = -5;

/** How long a proxy reuses the member list it asked the members for (see probeCluster). */
const PROBE_REUSE_MS = 10_000;

export interface AgentOptions {
  readonly cache: CachePaths;
  readonly node: NodePaths;
  readonly installDir: string;
  readonly log: Logger;
  readonly local: LocalConfig;
  readonly version: string;
  /** buildId of the code this agent runs. */
  readonly build?: string;
  readonly yggdrasilBinary?: string;
  readonly etcdBinary?: string;
  /** Reconcile period once the node is ready; faster while it is converging. */
  readonly steadyIntervalMs?: number;
  readonly busyIntervalMs?: number;
}

export interface ClusterChange {
  readonly type: "put" | "delete";
  readonly key: string;
}

/** How this node is named in tables: RAPTIFORMICA_NODE_NAME, else the host name. */
export function displayName(): string {
  return process.env["RAPTIFORMICA_NODE_NAME"] || hostname();
}

/**
 * The reconcile loop of a member. Each tick converges this machine on the shared config:
 * yggdrasil with the cluster's peers, an etcd member or a local grpc-proxy, a lease-backed
 * node record, and — on the etcd leader — the voter set. It never deletes state because the
 * cluster is unreachable: it keeps the mesh up from the local cache and retries.
 */
export class Agent {
  private readonly supervisor: Supervisor;
  private readonly hooks: HookQueue<ClusterChange>;
  private readonly startedAt = Date.now();
  private info?: YggdrasilInfo;
  private identity?: Identity;
  private mesh?: MeshService;
  private kv?: Etcd3;
  private kvTarget = "";
  private registration?: NodeRegistration;
  private watcher?: Watcher;
  private seeded = false;
  private phase: AgentStatus["phase"] = "starting";
  private role?: Role;
  private consensusNote = "";
  private lastError?: string;
  private stopped = false;
  private wake?: () => void;
  private mirrorTimer?: NodeJS.Timeout;
  private readonly learnerSince = new Map<string, number>();
  /** Since when each voter has had no node record, as seen by this node while it leads. */
  private readonly voterGoneSince = new Map<string, number>();
  private voterEndpoints: string[] = [];
  private kvCopy: { mapping: FlatMapping; at: number } | undefined;
  private probed: { members: EtcdMember[]; at: number } | undefined;
  /** Mesh addresses whose node record was deleted (watched) and has not come back. */
  private readonly recordGone = new Set<string>();
  private proxyEndpoints: string[] = [];
  /** The settings this node runs with; a bad value in the shared config leaves its field as it was. */
  private lastGood?: ClusterSettings;
  private reportedProblems = "";

  constructor(private readonly o: AgentOptions) {
    this.supervisor = new Supervisor(o.node.runDir, o.node.logDir);
    this.hooks = new HookQueue((changes) => this.fireClusterChange(changes));
  }

  /** Runs until `stop()`; every failure is logged and retried on the next tick. */
  async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.tick();
        this.lastError = undefined;
      } catch (e) {
        const msg = errorMessage(e);
        if (msg !== this.lastError) this.o.log.warn(msg);
        this.lastError = msg;
      }
      await this.writeStatusQuietly();
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.nextInterval());
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private busyTicks = 0;
  private voterChangePending = false;

  /**
   * Ready: the steady period. Converging: fast at first, then backing off to 2 s (a poke
   * still wakes it at once) — a node that waits for the mesh to route to a member gains nothing from asking
   * twice a second for minutes, while 50 of them doing so starve the machine they share.
   */
  private nextInterval(): number {
    const steady = this.o.steadyIntervalMs ?? 5000;
    if (this.phase === "ready") {
      this.busyTicks = 0;
      // A voter change under way (a dead voter in its grace period, a learner to promote):
      // look again each second rather than a steady period later.
      return this.voterChangePending && this.role === "leader" ? Math.min(steady, 1000) : steady;
    }
    const busy = this.o.busyIntervalMs ?? 500;
    this.busyTicks++;
    return Math.min(steady, Math.max(busy, 2000), busy * 2 ** Math.floor(this.busyTicks / 8));
  }

  /** Reconcile now (SIGUSR1, `members --rejoin`, a watched change). */
  poke(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    this.hooks.close();
    this.mesh?.stopPeerLoop();
    if (this.mirrorTimer) clearTimeout(this.mirrorTimer);
    await this.watcher?.cancel().catch(() => undefined);
    this.registration?.close();
    this.kv?.close();
  }

  /** Graceful leave: drop the node record now rather than after its TTL. */
  async leave(): Promise<void> {
    await this.registration?.revoke();
  }

  async tick(): Promise<void> {
    const mapping = await this.sharedMapping();
    const settings = await this.settingsFrom(mapping);
    const { identity, mesh } = await this.ensureIdentity(mapping);
    await mesh.ensure(mapping, settings.yggdrasilPort);
    if (this.phase === "starting") this.phase = "meshed";
    await this.registerSelf(mapping, settings, identity);
    const ca = caFromMapping(mapping);
    if (!ca) {
      this.consensusNote = "waiting: no cluster CA in the config yet";
      return;
    }
    await ensureNodeCertificate(this.o.node, ca, memberName(identity.publicKey), identity.address);
    await this.ensureConsensus(mapping, settings, identity);
    await this.ensureKv(settings, identity);
    if (this.kv && this.role === "leader") {
      await this.manageVoters(settings);
      await this.manageGone(settings, identity);
    }
  }

  // ---- config -------------------------------------------------------------------------------

  /** The cluster KV when reachable (and seeded), else the local cache / module files. */
  private async sharedMapping(): Promise<FlatMapping> {
    if (this.kv && this.seeded) {
      // The watch invalidates the copy on every change; the age bound covers a watch that
      // silently missed events while reconnecting.
      if (this.kvCopy && Date.now() - this.kvCopy.at < 30_000) return this.kvCopy.mapping;
      try {
        const m = await readKvMapping(this.kv, 2000);
        if (mappingProblem(m) === undefined) {
          this.kvCopy = { mapping: m, at: Date.now() };
          return m;
        }
      } catch {
        /* fall back to the cache */
      }
    }
    this.kvCopy = undefined;
    return this.o.local.snapshot().mapping;
  }

  /**
   * The cluster settings to run with: a bad value (written past `config set`, straight into the
   * KV, or by an older version) is logged once and the last good value of that key is kept —
   * also across restarts (node/settings.json) — so a typo never stops etcd or the mesh on
   * every member at once. `members` shows the problem; `config set` fixes it.
   */
  private async settingsFrom(mapping: FlatMapping): Promise<ClusterSettings> {
    this.lastGood ??= readLastGoodSettings(this.o.node.lastGoodSettings);
    const { settings, problems } = resolveSettings(mapping, this.lastGood);
    const report = problems.map((p) => p.message).join("\n");
    if (report !== this.reportedProblems) {
      for (const p of problems) this.o.log.warn(`${p.message} This member keeps running with its last good settings meanwhile.`);
      if (!report) this.o.log.info("the cluster settings are valid again");
      this.reportedProblems = report;
    }
    if (!sameSettings(this.lastGood, settings)) {
      try {
        await writeLastGoodSettings(this.o.node.lastGoodSettings, settings);
        this.lastGood = settings;
      } catch (e) {
        this.o.log.debug(`could not record the settings: ${errorMessage(e)}`);
      }
    }
    return settings;
  }

  private async writeShared(change: (m: FlatMapping) => FlatMapping): Promise<void> {
    this.kvCopy = undefined;
    if (this.kv && this.seeded) {
      try {
        await updateKvMapping(this.kv, change, 3000);
        return;
      } catch (e) {
        this.o.log.debug(`KV write failed, writing the local cache: ${errorMessage(e)}`);
      }
    }
    await this.o.local.update(change);
  }

  private scheduleMirror(): void {
    if (this.mirrorTimer) return;
    // Coalesces the burst of changes of many nodes joining into one write of the cache.
    this.mirrorTimer = setTimeout(() => {
      this.mirrorTimer = undefined;
      void this.mirrorKvToCache();
    }, 1500);
    this.mirrorTimer.unref();
  }

  /** KV → local cache, so the mesh keeps the newest view when the cluster becomes unreachable. */
  private async mirrorKvToCache(): Promise<void> {
    if (!this.kv) return;
    try {
      const m = this.kvCopy?.mapping ?? (await readKvMapping(this.kv, 3000));
      if (mappingProblem(m) !== undefined) return;
      await this.o.local.store.update(() => m, () => m);
    } catch (e) {
      this.o.log.debug(`mirror to cache: ${errorMessage(e)}`);
    }
  }

  // ---- mesh ---------------------------------------------------------------------------------

  private async ensureIdentity(mapping: FlatMapping): Promise<{ identity: Identity; mesh: MeshService }> {
    if (!this.info) {
      const detected = await detectYggdrasil(this.o.yggdrasilBinary ?? yggdrasilBinary());
      if (!detected.ok) throw new UserError(detected.error);
      this.info = detected.value;
    }
    if (!this.identity) this.identity = await loadOrCreateIdentity(this.o.node.yggdrasilDir, this.info);
    const mixed = mixedMajorProblem(mapping, this.identity.publicKey, this.info.major);
    if (mixed) throw new UserError(mixed);
    if (!this.mesh) {
      this.mesh = new MeshService(this.o.node, this.info, this.identity, this.supervisor, this.o.log);
      this.mesh.startPeerLoop();
    }
    return { identity: this.identity, mesh: this.mesh };
  }

  private async registerSelf(mapping: FlatMapping, settings: ClusterSettings, identity: Identity): Promise<void> {
    const advertised = readAdvertised(this.o.cache.lastAdvertised);
    const current = parseNeighbours(mapping).find((n) => n.publicKey === identity.publicKey);
    const me = selfNeighbour(
      current,
      { publicKey: identity.publicKey, meshAddress: identity.address, yggdrasilPort: settings.yggdrasilPort, yggdrasilMajor: this.info?.major ?? "0.4", name: displayName() },
      advertised.ok ? advertised.value : undefined,
    );
    if (sameNeighbour(current, me)) return;
    await this.writeShared((m) => withNeighbour(m, me));
  }

  // ---- consensus ----------------------------------------------------------------------------

  /**
   * The member list asked of the members themselves over the mesh: the voters known from the
   * last answer first, any 5 neighbours when none of them answers. On a proxy (every node but
   * the voters) the answer is reused for PROBE_REUSE_MS unless the voter set changed (the
   * voter log's watch event clears it): asking every tick, with fresh TLS connections each
   * time, kept 45 proxies of a 50-node cluster and its voters busy with handshakes alone.
   */
  private async probeCluster(mapping: FlatMapping, settings: ClusterSettings, self: string): Promise<EtcdMember[] | undefined> {
    if (this.role === "proxy" && this.probed && Date.now() - this.probed.at < PROBE_REUSE_MS) return this.probed.members;
    let members = this.voterEndpoints.length > 0 ? await probeMemberList(this.voterEndpoints, this.o.node, 2000) : undefined;
    if (!members) {
      const endpoints = neighbourEndpoints(mapping, settings.clientPort, self)
        .sort(() => Math.random() - 0.5)
        .slice(0, 5);
      members = await probeMemberList(endpoints, this.o.node, 2000);
    }
    this.probed = members && members.some((m) => m.peerURLs.length > 0) ? { members, at: Date.now() } : undefined;
    return members;
  }

  private async ensureConsensus(mapping: FlatMapping, settings: ClusterSettings, identity: Identity): Promise<void> {
    const myName = memberName(identity.publicKey);
    const myPeer = peerUrl(identity.address, settings.peerPort);
    const hasData = existsSync(join(this.o.node.etcdData, "member"));
    let members: EtcdMember[] | undefined;
    // Through the local proxy the member list is fake (see realMemberList): ask the members.
    if (this.kv && this.role !== "proxy") members = await memberList(this.kv, 2000).catch(() => undefined);
    if (!members) {
      // With data, only a real member list counts (proxies answer a made-up one): it is how a
      // voter that was removed while it was down — replaced, or left out by `recover` — learns
      // it must join again instead of restarting an etcd the cluster refuses forever.
      const probed = await this.probeCluster(mapping, settings, identity.publicKey);
      if (probed && (!hasData || probed.some((m) => m.peerURLs.length > 0))) members = probed;
    }
    const others = parseNeighbours(mapping)
      .filter((n) => n.publicKey !== identity.publicKey && !n.left)
      .map((n) => n.publicKey);
    const plan = planConsensus({
      myName,
      myPeerUrl: myPeer,
      myPublicKey: identity.publicKey,
      clientPort: settings.clientPort,
      hasData,
      clusterKnown: Boolean(mapping[KEYS.clusterToken]),
      otherNeighbours: others,
      ...(members ? { members } : {}),
    });
    if (members) {
      this.voterEndpoints = voterEndpoints(members, settings.clientPort);
    }
    await this.apply(plan, mapping, settings, identity, members);
  }

  private etcdSpec(args: string[], identity: Identity, settings: ClusterSettings) {
    return {
      name: ETCD_SERVICE,
      command: this.o.etcdBinary ?? "etcd",
      args,
      // Raft misses heartbeats when the machine is busy, and every missed election timeout is
      // an election and a pause of the whole KV (etcd's docs advise giving it priority).
      priority: ETCD_PRIORITY,
      // Restart only for what matters to a running member; initial-cluster flags are ignored
      // once the data dir exists.
      // (Raft timing only when changed from the default: upgraded agents keep their etcd running.)
      configHash: `member|${memberName(identity.publicKey)}|${identity.address}|${settings.clientPort}|${settings.peerPort}${settings.heartbeatMs !== 100 || settings.electionMs !== 1000 ? `|${settings.heartbeatMs}|${settings.electionMs}` : ""}`,
    };
  }

  private async apply(plan: ConsensusPlan, mapping: FlatMapping, settings: ClusterSettings, identity: Identity, members?: EtcdMember[]): Promise<void> {
    const name = memberName(identity.publicKey);
    const token = mapping[KEYS.clusterToken] ?? "";
    const base = { name, meshAddress: identity.address, clientPort: settings.clientPort, peerPort: settings.peerPort, heartbeatMs: settings.heartbeatMs, electionMs: settings.electionMs };
    switch (plan.kind) {
      case "member": {
        await this.supervisor.stop(PROXY_SERVICE);
        const args = etcdServerArgs(this.o.node, { ...base, state: "existing", initialCluster: new Map([[name, peerUrl(identity.address, settings.peerPort)]]), token });
        const flag = this.o.node.forceNewCluster;
        if (existsSync(flag)) {
          // `recover`: once, etcd rewrites its membership to itself alone, keeping its data.
          this.closeKv();
          const spec = this.etcdSpec([...args, "--force-new-cluster"], identity, settings);
          await this.supervisor.ensure({ ...spec, configHash: `${spec.configHash}|force-new-cluster` }, { restart: true });
          rmSync(flag, { force: true });
          this.o.log.warn("recover: restarted etcd with --force-new-cluster; this member is now the only voter");
          this.role = "voter";
          this.consensusNote = "recovered";
          return;
        }
        const out = await this.supervisor.ensure(this.etcdSpec(args, identity, settings));
        if (out !== "running") this.o.log.info(`etcd member ${out}`);
        const me = members?.find((m) => m.name === name);
        this.role = me?.isLearner ? "learner" : "voter";
        this.consensusNote = "etcd member";
        return;
      }
      case "bootstrap": {
        const newToken = `raptiformica-${randomBytes(8).toString("hex")}`;
        await this.o.local.update((m) => ({ ...m, [KEYS.clusterToken]: newToken }));
        await this.supervisor.stop(PROXY_SERVICE);
        const args = etcdServerArgs(this.o.node, {
          ...base,
          state: "new",
          initialCluster: new Map([[name, peerUrl(identity.address, settings.peerPort)]]),
          token: newToken,
        });
        await this.supervisor.ensure(this.etcdSpec(args, identity, settings));
        this.o.log.info(`bootstrapped a new etcd cluster (${newToken}) as its first member`);
        this.role = "voter";
        this.consensusNote = "bootstrapped";
        return;
      }
      case "join-as-member": {
        await this.supervisor.stop(PROXY_SERVICE);
        this.closeKv();
        const args = etcdServerArgs(this.o.node, { ...base, state: "existing", initialCluster: plan.initialCluster, token });
        await this.supervisor.ensure(this.etcdSpec(args, identity, settings));
        this.o.log.info(`joining etcd as a learner (cluster: ${[...plan.initialCluster.keys()].join(", ")})`);
        this.role = "learner";
        this.consensusNote = "joining as a member";
        return;
      }
      case "proxy": {
        await this.supervisor.stop(ETCD_SERVICE);
        // A voter whose node record just vanished is most likely dead: grpc-proxy would keep
        // sending a share of the requests to it, each stalling until it times out, until the
        // voter manager replaces it. Leave it out meanwhile (unless that would leave none).
        const live = plan.endpoints.filter((e) => !this.recordGone.has(hostOfUrl(e)));
        const endpoints = [...(live.length > 0 ? live : plan.endpoints)].sort();
        const out = await this.supervisor.ensure({
          name: PROXY_SERVICE,
          command: this.o.etcdBinary ?? "etcd",
          args: grpcProxyArgs(this.o.node, endpoints, settings.clientPort),
          configHash: `proxy|${endpoints.join(",")}|${settings.clientPort}`,
        });
        if (out !== "running") this.o.log.info(`etcd grpc-proxy ${out} → ${endpoints.join(", ")}`);
        this.proxyEndpoints = endpoints;
        this.role = "proxy";
        this.consensusNote = "proxy";
        return;
      }
      case "rejoin": {
        await this.supervisor.stop(ETCD_SERVICE);
        this.closeKv();
        // Keep the old data (nothing is deleted); a fresh join starts from an empty dir.
        const aside = `${this.o.node.etcdData}.removed-${Date.now()}`;
        renameSync(this.o.node.etcdData, aside);
        this.o.log.warn(`${plan.reason}: moved its etcd data to ${aside} and joining again`);
        this.role = undefined;
        return;
      }
      case "wait":
        if (this.consensusNote !== plan.reason) this.o.log.info(plan.reason);
        this.consensusNote = plan.reason;
        return;
    }
  }

  // ---- KV client, record, watches -----------------------------------------------------------

  private closeKv(): void {
    this.kvCopy = undefined;
    void this.watcher?.cancel().catch(() => undefined);
    this.watcher = undefined;
    this.registration?.close();
    this.registration = undefined;
    this.kv?.close();
    this.kv = undefined;
  }

  private async ensureKv(settings: ClusterSettings, identity: Identity): Promise<void> {
    const local = this.supervisor.isRunning(ETCD_SERVICE) || this.supervisor.isRunning(PROXY_SERVICE);
    if (!local) {
      this.closeKv();
      return;
    }
    // A learner cannot serve reads, writes or leases: while this node is one, talk to the voters.
    let endpoints = [clientUrl("127.0.0.1", settings.clientPort)];
    if (this.role === "learner" && this.voterEndpoints.length > 0) endpoints = this.voterEndpoints;
    const target = endpoints.join(",");
    if (this.kv && this.kvTarget !== target) this.closeKv();
    if (!this.kv) {
      this.kv = openClient(endpoints, this.o.node, 2000);
      this.kvTarget = target;
    }
    const kv = this.kv;
    if (!this.seeded) {
      const cache = this.o.local.snapshot().mapping;
      const seededNow = await seedKvIfEmpty(kv, cache, 5000);
      if (seededNow) this.o.log.info(`uploaded the local config (${Object.keys(cache).length} keys) to the empty cluster KV`);
      this.seeded = true;
      this.scheduleMirror();
    }
    if (this.role !== "proxy") {
      try {
        const myPeer = peerUrl(identity.address, settings.peerPort);
        const [{ leader }, members] = await Promise.all([leaderOf(kv, 2000), memberList(kv, 2000)]);
        const me = members.find((m) => m.peerURLs.includes(myPeer));
        this.role = me?.isLearner ? "learner" : me && leader === me.id ? "leader" : "voter";
        this.voterEndpoints = voterEndpoints(members, settings.clientPort);
      } catch {
        /* keep the last known role */
      }
    }
    const advertised = readAdvertised(this.o.cache.lastAdvertised);
    const record: NodeRecord = {
      publicKey: identity.publicKey,
      name: displayName(),
      meshAddress: identity.address,
      ...(advertised.ok && advertised.value ? { host: advertised.value.host } : {}),
      role: this.role ?? "proxy",
      startedAt: this.startedAt,
      hostname: hostname(),
      version: this.o.version,
      yggdrasilMajor: this.info?.major ?? "",
    };
    await this.replayPending(kv);
    this.registration ??= new NodeRegistration(kv, settings.nodeTtlSeconds);
    await this.registration.ensure(record, 3000);
    this.phase = "ready";
    if (!this.watcher) await this.startWatch(kv);
  }

  /** Pushes config changes made here while the cluster was unreachable (see PendingChanges). */
  private async replayPending(kv: Etcd3): Promise<void> {
    const journal = new PendingChanges(this.o.cache.pendingConfig).take();
    if (!journal) return;
    try {
      if (journal.ops.length > 0) await updateKvMapping(kv, (m) => applyOps(m, journal.ops), 5000);
      journal.done();
      this.kvCopy = undefined;
      this.o.log.info(`pushed ${journal.ops.length} config change(s) made while the cluster was unreachable`);
    } catch (e) {
      journal.restore();
      throw e;
    }
  }

  private async startWatch(kv: Etcd3): Promise<void> {
    const watcher = await deadline("etcd watch", 3000, kv.watch().prefix("raptiformica/").create());
    watcher.on("put", (res) => this.onChange("put", res.key.toString(), res.value.toString()));
    watcher.on("delete", (res) => this.onChange("delete", res.key.toString()));
    // Emitted only when etcd cancels the watch — e.g. resuming after a reconnect from a
    // revision that auto-compaction removed. The watcher is dead then: start a new one from
    // now on the next tick, and read the config again since events were missed.
    watcher.on("error", (e) => {
      if (this.watcher !== watcher) return;
      this.o.log.debug(`watch: ${errorMessage(e)}; watching again`);
      this.watcher = undefined;
      this.kvCopy = undefined;
      this.poke();
    });
    this.watcher = watcher;
  }

  /**
   * A watched change. The copy of the shared config is patched in place of a re-read: while
   * 50 nodes join, every agent would otherwise read the whole config again for every key any
   * of them writes. Node records wake only the leader (its voter manager needs them; the
   * others gain nothing from a tick), neighbour entries everyone (new peers to dial).
   */
  private onChange(type: "put" | "delete", key: string, value?: string): void {
    if (!isEphemeralKey(key) && this.kvCopy) {
      const mapping = { ...this.kvCopy.mapping };
      if (type === "put" && value !== undefined) mapping[key] = value;
      else delete mapping[key];
      this.kvCopy = { mapping, at: this.kvCopy.at };
    }
    if (key === KEYS.voterLog) {
      this.probed = undefined;
      this.poke();
    }
    if (key.startsWith(KEYS.nodes)) {
      const pk = key.slice(KEYS.nodes.length);
      const address = isPublicKeyHex(pk) ? hostOfUrl(clientUrl(addressForKey(pk), 1)) : "";
      const proxied = this.role === "proxy" && this.proxyEndpoints.some((e) => hostOfUrl(e) === address);
      if (type === "delete") this.recordGone.add(address);
      else this.recordGone.delete(address);
      if (proxied) this.poke();
    }
    if (key.startsWith(KEYS.nodes) || key.startsWith(KEYS.neighbours)) {
      this.hooks.push({ type, key });
      if (key.startsWith(KEYS.neighbours) || this.role === "leader") this.poke();
    }
    if (!isEphemeralKey(key)) this.scheduleMirror();
  }

  private async fireClusterChange(changes: ClusterChange[]): Promise<void> {
    try {
      const mapping = await this.sharedMapping();
      const probe = createAvailabilityProbe(this.o.installDir);
      const platform = (await typeStatuses(mapping, "platform", probe)).find((s) => s.available)?.name;
      if (!platform) return;
      const report = await fireHook(
        mapping,
        platform,
        { hook: "cluster_change", time: new Date().toISOString(), changes },
        { installDir: this.o.installDir, cacheDir: this.o.cache.root, log: this.o.log, live: false },
      );
      this.o.log.debug(`cluster_change: ${report.outcomes.length} handler(s) for ${changes.length} change(s)`);
    } catch (e) {
      this.o.log.warn(`cluster_change hook: ${errorMessage(e)}`);
    }
  }

  // ---- voter manager (leader only) ----------------------------------------------------------

  private async manageVoters(settings: ClusterSettings): Promise<void> {
    const kv = this.kv;
    if (!kv) return;
    try {
      const [members, alive] = await Promise.all([realMemberList(kv, [], this.o.node, 2000), readNodeRecords(kv, 2000)]);
      const now = Date.now();
      for (const m of members) if (m.isLearner && !m.name && !this.learnerSince.has(m.id)) this.learnerSince.set(m.id, now);
      const ages = new Map([...this.learnerSince].map(([id, since]) => [id, now - since]));
      const gone = new Set(votersWithoutRecord(members, alive, settings.peerPort).map((m) => m.id));
      for (const id of [...this.voterGoneSince.keys()]) if (!gone.has(id)) this.voterGoneSince.delete(id);
      for (const id of gone) if (!this.voterGoneSince.has(id)) this.voterGoneSince.set(id, now);
      const action = nextVoterAction({
        members,
        alive,
        maxVoters: settings.maxVoters,
        peerPort: settings.peerPort,
        learnerAgeMs: ages,
        learnerStartTimeoutMs: 60_000,
        voterGoneMs: new Map([...this.voterGoneSince].map(([id, since]) => [id, now - since])),
        deadVoterGraceMs: settings.deadVoterGraceSeconds * 1000,
      });
      this.voterChangePending = action.kind !== "none" || gone.size > 0 || members.some((m) => m.isLearner);
      const done = await applyVoterAction(kv, action);
      if (done) {
        this.o.log.info(`voters: ${done}`);
        if (action.kind === "remove-dead-voter") this.voterGoneSince.delete(action.member.id);
        await appendVoterLog(kv, { time: new Date(now).toISOString(), change: done }).catch((e) => this.o.log.debug(`voter log: ${errorMessage(e)}`));
        this.poke();
      }
    } catch (e) {
      // "learner not in sync with leader" is expected until it catches up.
      this.o.log.debug(`voter manager: ${errorMessage(e)}`);
    }
  }

  private lastEvictionPass = 0;

  /** Leader only, every few seconds: mark gone neighbours, evict those gone past evict_after. */
  private async manageGone(settings: ClusterSettings, identity: Identity): Promise<void> {
    const kv = this.kv;
    if (!kv || Date.now() - this.lastEvictionPass < 3000) return;
    this.lastEvictionPass = Date.now();
    try {
      const mapping = this.kvCopy?.mapping;
      await evictionPass(kv, { self: identity.publicKey, evictAfterMs: settings.evictAfterSeconds * 1000, log: (l) => this.o.log.info(l), ...(mapping ? { mapping } : {}) });
    } catch (e) {
      this.o.log.debug(`eviction: ${errorMessage(e)}`);
    }
  }

  // ---- status -------------------------------------------------------------------------------

  private async writeStatusQuietly(): Promise<void> {
    try {
      mkdirSync(this.o.node.runDir, { recursive: true, mode: 0o700 });
      await writeStatus(this.o.node.status, {
        pid: process.pid,
        phase: this.phase,
        ...(this.identity ? { publicKey: this.identity.publicKey, meshAddress: this.identity.address } : {}),
        ...(this.role ? { role: this.role } : {}),
        consensus: this.consensusNote,
        kv: this.kv && this.phase === "ready" ? "connected" : "unreachable",
        updatedAt: Date.now(),
        startedAt: this.startedAt,
        ...(this.lastError ? { lastError: this.lastError } : {}),
        ...(this.o.build ? { build: this.o.build } : {}),
      });
    } catch {
      /* status is best effort */
    }
  }
}
