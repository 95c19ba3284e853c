import { randomBytes } from "node:crypto";
import { existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import type { FlatMapping } from "../config/flatten.ts";
import { leaderOf, memberList, probeMemberList, type EtcdMember } from "../consensus/client.ts";
import { proxyKeepaliveArgs, etcdVersion } from "../consensus/etcd-version.ts";
import { errorMessage } from "../util/errors.ts";
import { claimRestart, releaseRestart } from "../consensus/restart-claim.ts";
import { clientUrl, clientUrlOfPeer, etcdServerArgs, grpcProxyArgs, neighbourEndpoints, peerUrl, voterEndpoints, type MemberStart } from "../consensus/etcd-args.ts";
import { caFromMapping, ensureNodeCertificate } from "../consensus/pki.ts";
import { planConsensus, type ConsensusPlan } from "../consensus/plan.ts";
import { KEYS, type ClusterSettings } from "../consensus/settings.ts";
import { memberName, parseNeighbours } from "../mesh/neighbours.ts";
import type { Identity } from "../mesh/yggdrasil/identity.ts";
import { ETCD_SERVICE, MESH_ONLY, PROXY_SERVICE, etcdServesMeshOnly, hostOfUrl, type NodeState, type StepContext } from "./agent-state.ts";
import { Supervisor, type ServiceSpec } from "./supervisor.ts";
import type { NodePaths } from "./paths.ts";
import { readStatus } from "./status.ts";
import { UpstreamWatch } from "./upstream-watch.ts";
import { hostAnswers } from "../util/tcp-probe.ts";

/** Nice value of an etcd member (the default is 0). */
const ETCD_PRIORITY = -5;

/**
 * This member's own etcd as a client can reach it (a client URL): 127.0.0.1, or its mesh
 * address while it runs as a learner does (MESH_ONLY: the local endpoint is the grpc-proxy,
 * which would answer for other members). For `recover`, which must ask this very member.
 * Reads the supervisor's record and the agent's status; never throws.
 */
export function ownEtcdEndpoint(node: NodePaths, clientPort: number): string {
  const meshOnly = etcdServesMeshOnly(new Supervisor(node.runDir, node.logDir), false);
  const meshAddress = readStatus(node.status)?.meshAddress;
  return clientUrl(meshOnly && meshAddress ? meshAddress : "127.0.0.1", clientPort);
}

/**
 * How long (s) a member's node record is held on a lease of its own while the member restarts
 * its etcd (NodeRegistration.hold): well past a restart under load (4 s seen in a CI run, about
 * 50 ms on a quiet machine), short enough that a member dying in the middle is shown failed
 * soon after (or at once, by a voter's failure watch).
 */
export const RECORD_HOLD_S = 20;

/**
 * How long (ms) a voter's own etcd may have no leader before the agent asks the other voters
 * whether it is still a member (removedWhileCutOff): a voter cut off past dead_voter_grace is
 * replaced, and after the heal its etcd learns of its removal only when its peers refuse it,
 * seconds later (6 s in a chaos run, its local endpoint dead all along).
 */
export const LEADERLESS_CHECK_MS = 3000;

/**
 * Whether this member (`myPeer`, its peer URL) was removed from the cluster while it was cut
 * off: its own etcd's member list (`local`) still has it, but the list the other voters answer
 * (`probed`, a real one: with peer URLs) does not. Pure.
 */
export function removedWhileCutOff(local: readonly EtcdMember[], probed: readonly EtcdMember[] | undefined, myPeer: string): boolean {
  if (!probed || !probed.some((m) => m.peerURLs.length > 0)) return false;
  return local.some((m) => m.peerURLs.includes(myPeer)) && !probed.some((m) => m.peerURLs.includes(myPeer));
}

/** How long a proxy reuses the member list it asked the members for (see ConsensusStep.probe). */
export const PROBE_REUSE_MS = 10_000;

/**
 * The upstreams of the local grpc-proxy: the voters, less those whose node record vanished
 * or that the upstream watch saw not answering (`left out`: hosts). Such a voter is most
 * likely dead: grpc-proxy would keep sending a share of the requests to it, each stalling
 * until it times out, until the voter manager replaces it. Left out meanwhile — unless that
 * would leave none. Sorted, so the same set never restarts the proxy.
 */
export function proxyUpstreams(voters: readonly string[], leftOut: ReadonlySet<string>): string[] {
  const live = voters.filter((e) => !leftOut.has(hostOfUrl(e)));
  return [...(live.length > 0 ? live : voters)].sort();
}

/**
 * How long a running grpc-proxy keeps its upstreams when the only change is voters added to
 * them (a learner promoted, a left-out voter answering again) before it is restarted with them.
 * Every restart blinks the member's local endpoint and costs an etcd start; while 50 members
 * formed, each proxy restarted 9–34 times in 5 minutes (voters promoted one by one, and under
 * load the upstream watch's misses and hits leaving voters out and back in), itself a good part
 * of the load. A removal still restarts at once: that is what a dead voter needs (see
 * UPSTREAM_WATCH).
 */
export const PROXY_ADDITIONS_SETTLE_MS = 30_000;

/**
 * The upstreams to run the grpc-proxy with: `desired` (see proxyUpstreams), except while a
 * proxy runs on `running` and every one of those is still desired, only some more are: then
 * `running` until the additions have been wanted for `settleMs` (from `additionsSince`, epoch
 * ms, which the caller keeps and passes back). A removal, or no proxy yet, takes `desired` at
 * once; so do additions to a proxy running on a single upstream, which has nothing to fall
 * back on: in a chaos run a proxy left with the one voter on its side of a partition kept it
 * alone after the heal, and stalled 8.5 s when that voter was replaced and joined again. Pure.
 */
export function proxyEndpointsToRun(
  desired: readonly string[],
  running: readonly string[] | undefined,
  additionsSince: number | undefined,
  now: number,
  settleMs: number = PROXY_ADDITIONS_SETTLE_MS,
): { endpoints: string[]; additionsSince: number | undefined } {
  const onlyAdditions = running !== undefined && running.length > 1 && desired.length > running.length && running.every((e) => desired.includes(e));
  if (!onlyAdditions) return { endpoints: [...desired], additionsSince: undefined };
  const since = additionsSince ?? now;
  if (now - since >= settleMs) return { endpoints: [...desired], additionsSince: undefined };
  return { endpoints: [...running], additionsSince: since };
}

export interface ConsensusStepDeps extends StepContext {
  /** The open KV client (KV session step), if any. */
  readonly kv: () => Etcd3 | undefined;
  /** Closes the KV session (before etcd is restarted under it). */
  readonly closeKv: () => void;
  /** Closes the KV session before a restart of this member's own etcd, its node record moved onto a lease that outlasts the restart (KvSession.closeForRestart). */
  readonly closeKvForRestart: (holdSeconds: number) => Promise<void>;
  /** Reconcile now (the upstream watch saw a voter stop or start answering). */
  readonly poke: () => void;
  /** The proxy's upstream watch; the real one (TCP table, TCP connect) unless a test gives its own. */
  readonly upstreams?: UpstreamWatch;
  readonly now?: () => number;
}

type Changes = Partial<Omit<NodeState, "recordGone">>;

/**
 * Consensus: probe (the member list, from the local etcd or the members over the mesh),
 * plan (planConsensus, pure) and apply (run an etcd member, bootstrap, join as a learner, run
 * a grpc-proxy to the voters, re-join fresh, or wait).
 */
export class ConsensusStep {
  private probed: { members: EtcdMember[]; at: number; voterLogChanges: number } | undefined;
  private readonly now: () => number;
  /** The upstreams the grpc-proxy was last ensured with (undefined: no proxy run by this agent), and since when more were wanted (proxyEndpointsToRun). */
  private proxy: { endpoints: string[]; additionsSince: number | undefined; spec: ServiceSpec } | undefined;
  /** The grpc-proxy service operations under way, one after another (proxyOp). */
  private proxyOps: Promise<unknown> = Promise.resolve();

  private readonly upstreams: UpstreamWatch;
  /** Since when this voter's own etcd has had no leader (ms), while it has none (crossCheck). */
  private leaderlessSince: number | undefined;
  /** Why the last takeover claim failed (logged once per reason); undefined once claimed. */
  private takeoverWait: string | undefined;
  /** This member holds the restart slot for a restart it made (a takeover, an upgrade): given back once its etcd answers again. */
  private holdsRestartSlot = false;

  constructor(private readonly d: ConsensusStepDeps) {
    this.now = d.now ?? Date.now;
    this.upstreams =
      d.upstreams ??
      new UpstreamWatch({
        probe: hostAnswers,
        onChange: () => {
          d.poke();
          void this.reconnectProxy();
        },
      });
  }

  /** Stops the upstream watch's timer (the agent is stopping). */
  stop(): void {
    this.upstreams.stop();
  }

  /** This node's certificate from the cluster CA; a note to wait with while the config has no CA yet. */
  async certify(mapping: FlatMapping, identity: Identity): Promise<string | undefined> {
    const ca = caFromMapping(mapping);
    if (!ca) return "waiting: no cluster CA in the config yet";
    await ensureNodeCertificate(this.d.node, ca, memberName(identity.publicKey), identity.address);
    return undefined;
  }

  /**
   * The member list asked of the members themselves over the mesh: the voters known from the
   * last answer first, any 5 neighbours when none of them answers. On a proxy (every node but
   * the voters) the answer is reused for PROBE_REUSE_MS unless the voter set changed (the
   * voter log's watch event counts in `voterLogChanges`): asking every tick, with fresh TLS
   * connections each time, kept 45 proxies of a 50-node cluster and its voters busy with
   * handshakes alone.
   */
  private async probe(s: NodeState, mapping: FlatMapping, settings: ClusterSettings, self: string): Promise<EtcdMember[] | undefined> {
    const p = this.probed;
    if (s.role === "proxy" && p && p.voterLogChanges === s.voterLogChanges && this.now() - p.at < PROBE_REUSE_MS) return p.members;
    let members = s.voterEndpoints.length > 0 ? await probeMemberList(s.voterEndpoints, this.d.node, 2000) : undefined;
    if (!members) {
      const endpoints = neighbourEndpoints(mapping, settings.clientPort, self)
        .sort(() => Math.random() - 0.5)
        .slice(0, 5);
      members = await probeMemberList(endpoints, this.d.node, 2000);
    }
    this.probed = members && members.some((m) => m.peerURLs.length > 0) ? { members, at: this.now(), voterLogChanges: s.voterLogChanges } : undefined;
    return members;
  }

  /**
   * The member list to plan with, for a voter whose own etcd answered `local`: that, unless
   * its etcd has had no leader for LEADERLESS_CHECK_MS and the other voters' list no longer
   * has it (removedWhileCutOff), then theirs, so the plan joins it again now. Never throws.
   */
  private async crossCheck(kv: Etcd3, local: EtcdMember[], settings: ClusterSettings, identity: Identity): Promise<EtcdMember[]> {
    const leader = await leaderOf(kv, 1000).then(
      (l) => l.leader,
      () => "0",
    );
    if (leader !== "0") {
      this.leaderlessSince = undefined;
      return local;
    }
    this.leaderlessSince ??= this.now();
    if (this.now() - this.leaderlessSince < LEADERLESS_CHECK_MS) return local;
    const myPeer = peerUrl(identity.address, settings.peerPort);
    const self = clientUrlOfPeer(myPeer, settings.clientPort);
    const others = voterEndpoints(local, settings.clientPort).filter((e) => e !== self);
    const probed = await probeMemberList(others, this.d.node, 1500);
    if (!removedWhileCutOff(local, probed, myPeer)) return local;
    this.d.log.info(`this member's etcd has had no leader for ${((this.now() - this.leaderlessSince) / 1000).toFixed(1)} s and the other voters' member list no longer has it: it was removed while cut off`);
    this.leaderlessSince = undefined;
    return probed!;
  }

  /** Probe and plan: what to run, and the voters' endpoints when a member list was had. */
  async decide(s: NodeState, mapping: FlatMapping, settings: ClusterSettings, identity: Identity): Promise<{ plan: ConsensusPlan; members?: EtcdMember[]; changes: Changes }> {
    const hasData = existsSync(join(this.d.node.etcdData, "member"));
    let members: EtcdMember[] | undefined;
    const kv = this.d.kv();
    // Through the local proxy the member list is fake (see realMemberList): ask the members.
    if (kv && s.role !== "proxy") members = await memberList(kv, 2000).catch(() => undefined);
    if (kv && members && hasData && (s.role === "voter" || s.role === "leader")) members = await this.crossCheck(kv, members, settings, identity);
    if (!members) {
      // With data, only a real member list counts (proxies answer a made-up one): it is how a
      // voter that was removed while it was down — replaced, or left out by `recover` — learns
      // it must join again instead of restarting an etcd the cluster refuses forever.
      const probed = await this.probe(s, mapping, settings, identity.publicKey);
      if (probed && (!hasData || probed.some((m) => m.peerURLs.length > 0))) members = probed;
    }
    const others = parseNeighbours(mapping)
      .filter((n) => n.publicKey !== identity.publicKey && !n.left)
      .map((n) => n.publicKey);
    const plan = planConsensus({
      myName: memberName(identity.publicKey),
      myPeerUrl: peerUrl(identity.address, settings.peerPort),
      myPublicKey: identity.publicKey,
      clientPort: settings.clientPort,
      hasData,
      clusterKnown: Boolean(mapping[KEYS.clusterToken]),
      otherNeighbours: others,
      ...(members ? { members } : {}),
    });
    return { plan, ...(members ? { members } : {}), changes: members ? { voterEndpoints: voterEndpoints(members, settings.clientPort) } : {} };
  }

  /** The etcd member service for `m` (etcdServerArgs, then `extraArgs`); its config hash follows `m` (MESH_ONLY when it leaves 127.0.0.1 to the proxy). */
  private etcdSpec(m: MemberStart, extraArgs: readonly string[] = []) {
    return {
      name: ETCD_SERVICE,
      command: this.d.etcdBinary ?? "etcd",
      args: [...etcdServerArgs(this.d.node, m), ...extraArgs],
      // Raft misses heartbeats when the machine is busy, and every missed election timeout is
      // an election and a pause of the whole KV (etcd's docs advise giving it priority).
      priority: ETCD_PRIORITY,
      // Restart only for what matters to a running member; initial-cluster flags are ignored
      // once the data dir exists.
      // (Raft timing only when changed from the default: upgraded agents keep their etcd running.)
      configHash: `member|${m.name}|${m.meshAddress}|${m.clientPort}|${m.peerPort}${m.heartbeatMs !== 100 || m.electionMs !== 1000 ? `|${m.heartbeatMs}|${m.electionMs}` : ""}${m.localClients === false ? MESH_ONLY : ""}`,
    };
  }

  /**
   * Runs the grpc-proxy on the local endpoint to `voters` (client URLs), less those left out
   * (proxyUpstreams), additions settled (proxyEndpointsToRun). Returns the upstreams it runs
   * with. Throws what the supervisor throws when the proxy cannot be started.
   */
  private async ensureProxy(s: NodeState, voters: readonly string[], settings: ClusterSettings): Promise<string[]> {
    const sup = this.d.supervisor;
    this.upstreams.follow(voters, settings.agentPort);
    const desired = proxyUpstreams(voters, new Set([...s.recordGone, ...this.upstreams.down]));
    const running = sup.isRunning(PROXY_SERVICE) ? this.proxy?.endpoints : undefined;
    const { endpoints, additionsSince } = proxyEndpointsToRun(desired, running, this.proxy?.additionsSince, this.now());
    const spec = {
      name: PROXY_SERVICE,
      command: this.d.etcdBinary ?? "etcd",
      args: grpcProxyArgs(this.d.node, endpoints, settings.clientPort, proxyKeepaliveArgs(await etcdVersion(this.d.etcdBinary ?? "etcd"))),
      configHash: `proxy|${endpoints.join(",")}|${settings.clientPort}`,
    };
    // An upgraded etcd program: a proxy restarts at once (only its own endpoint blinks).
    const upgraded = sup.programReplaced(PROXY_SERVICE);
    const out = await this.proxyOp(() => sup.ensure(spec, { restart: upgraded }));
    this.proxy = { endpoints, additionsSince, spec };
    if (out !== "running") this.d.log.info(`etcd grpc-proxy ${out}${upgraded ? " on the upgraded etcd program" : ""} → ${endpoints.join(", ")}`);
    return endpoints;
  }

  /**
   * The cluster's restart slot for member `name` (claimRestart), to take the local endpoint
   * over: true when claimed; false when someone holds it or the KV does not answer, logged
   * once per distinct reason (a promoted member that waits says why). Never throws.
   */
  private async claimRestartSlot(name: string): Promise<boolean> {
    const kv = this.d.kv();
    const why = !kv
      ? "no KV client"
      : await claimRestart(kv, name).then(
          (c) => (c.claimed ? undefined : `the cluster's etcd restart slot is held by ${c.holder || "another member"}`),
          (e: unknown) => `the KV did not answer the restart claim: ${errorMessage(e)}`,
        );
    if (why && why !== this.takeoverWait) this.d.log.info(`a voter now, the local endpoint still on the grpc-proxy: ${why}`);
    this.takeoverWait = why;
    if (why === undefined) this.holdsRestartSlot = true;
    return why === undefined;
  }

  /**
   * Gives the restart slot back (releaseRestart) through the KV client, which by now goes to
   * this member's restarted etcd on 127.0.0.1: an answer means it serves again, and the next
   * member need not wait out the slot's lease. Kept for the next tick while the KV does not
   * answer (the lease frees it in the end). Never throws.
   */
  private async releaseRestartSlot(name: string): Promise<void> {
    const kv = this.d.kv();
    if (!kv) return;
    const released = await releaseRestart(kv, name).then(
      () => true,
      () => false,
    );
    if (released) this.holdsRestartSlot = false;
  }

  /** Stops the grpc-proxy (etcd is to serve the local endpoint itself). */
  private async stopProxy(): Promise<void> {
    this.upstreams.follow([]);
    await this.proxyOp(() => this.d.supervisor.stop(PROXY_SERVICE));
    this.proxy = undefined;
  }

  /** Runs `op` on the grpc-proxy service after any still under way (the tick's and the upstream watch's never overlap). */
  private proxyOp<T>(op: () => Promise<T>): Promise<T> {
    const run = this.proxyOps.then(op, op);
    this.proxyOps = run.catch(() => undefined);
    return run;
  }

  /**
   * Restarts the running grpc-proxy, as last ensured, when the upstream watch says its voters
   * answer again after it could reach none (UpstreamWatch.takeReconnect): its reconnects have
   * backed off, a fresh one connects at once. Called from the watch, not the tick: a tick
   * waiting on a KV call through the stalled proxy held a chaos run's member 10 s. Never throws.
   */
  private async reconnectProxy(): Promise<void> {
    const sup = this.d.supervisor;
    const running = this.proxy;
    if (!running || !sup.isRunning(PROXY_SERVICE)) return;
    const due = this.upstreams.takeReconnect();
    if (!due) return;
    try {
      await this.proxyOp(() => sup.ensure(running.spec, { restart: true }));
      this.d.log.info(`etcd grpc-proxy restarted to reconnect at once: its voters answer again after ${(due.silentMs / 1000).toFixed(1)} s unreachable`);
    } catch (e) {
      this.d.log.warn(`etcd grpc-proxy restart to reconnect: ${errorMessage(e)}`);
    }
  }

  /**
   * A member whose etcd program was upgraded under it (a package upgrade by `slave`) restarts it
   * to run the new one — one member at a time across the cluster (restart-claim.ts), and only
   * while every voter has a live node record, so a restart never costs quorum. Until its turn it
   * keeps running the old program. Never throws: a KV that does not answer means not now.
   */
  private async restartIfUpgraded(s: NodeState, spec: ServiceSpec, name: string): Promise<void> {
    const sup = this.d.supervisor;
    const kv = this.d.kv();
    if (!kv || !sup.programReplaced(ETCD_SERVICE)) return;
    if (s.voterEndpoints.some((e) => s.recordGone.has(hostOfUrl(e)))) return;
    const claimed = await claimRestart(kv, name).then(
      (c) => c.claimed,
      () => false,
    );
    if (!claimed) return;
    this.holdsRestartSlot = true;
    await this.d.closeKvForRestart(RECORD_HOLD_S);
    await sup.ensure(spec, { restart: true });
    this.d.log.info("etcd's program was upgraded: restarted this member on it (one member at a time)");
  }

  /** Runs the plan; returns the role and note it leads to. */
  async apply(s: NodeState, plan: ConsensusPlan, mapping: FlatMapping, settings: ClusterSettings, identity: Identity, members?: EtcdMember[]): Promise<Changes> {
    const sup = this.d.supervisor;
    const log = this.d.log;
    const name = memberName(identity.publicKey);
    const myPeer = peerUrl(identity.address, settings.peerPort);
    const token = mapping[KEYS.clusterToken] ?? "";
    const voters = members ? voterEndpoints(members, settings.clientPort) : s.voterEndpoints;
    const base = { name, meshAddress: identity.address, clientPort: settings.clientPort, peerPort: settings.peerPort, heartbeatMs: settings.heartbeatMs, electionMs: settings.electionMs };
    switch (plan.kind) {
      case "member": {
        const member = (localClients: boolean): MemberStart => ({ ...base, state: "existing", initialCluster: new Map([[name, myPeer]]), token, localClients });
        const flag = this.d.node.forceNewCluster;
        if (existsSync(flag)) {
          // `recover`: once, etcd rewrites its membership to itself alone, keeping its data.
          this.d.closeKv();
          await this.stopProxy();
          const spec = this.etcdSpec(member(true), ["--force-new-cluster"]);
          // Recorded under the usual config's hash: the flag acts at start only, so the next tick
          // must not restart etcd once more without it (that second restart, right after recover
          // saw etcd answer, refused the user's next write).
          await sup.ensure({ ...spec, configHash: this.etcdSpec(member(true)).configHash }, { restart: true });
          rmSync(flag, { force: true });
          log.warn("recover: restarted etcd with --force-new-cluster; this member is now the only voter");
          return { role: "voter", consensusNote: "recovered" };
        }
        const me = members?.find((m) => m.peerURLs.includes(myPeer));
        const learner = me?.isLearner === true;
        const meshOnly = etcdServesMeshOnly(sup);
        const self = clientUrlOfPeer(myPeer, settings.clientPort);
        // A learner refuses reads, writes and leases: while this member is one, the local
        // endpoint stays on the grpc-proxy and etcd listens on the mesh address only. Once
        // promoted, etcd restarts to serve the local endpoint itself, in the cluster's one
        // restart slot (restart-claim.ts: two members promoted together, the second and third
        // of a new cluster, must not restart at once), and until then the proxy stays. Not
        // later, when it would be safer for quorum: a voter whose KV went over the mesh, when
        // a voter died, was seen to lose its own node record and stall the voter manager.
        // An etcd already serving the local endpoint is left so.
        const takeover = () => me !== undefined && !learner && voters.includes(self) && this.claimRestartSlot(name);
        const keepProxy = meshOnly ? !(await takeover()) : learner && !sup.isRunning(ETCD_SERVICE) && voters.length > 0;
        if (keepProxy) {
          if (voters.length > 0) await this.ensureProxy(s, voters, settings);
          const out = await sup.ensure(this.etcdSpec(member(false)));
          if (out !== "running") log.info(`etcd member ${out} (the local endpoint stays on the grpc-proxy until it is a voter)`);
          return { ...(me ? { role: learner ? "learner" : "voter" } : {}), consensusNote: "etcd member" };
        }
        if (meshOnly || sup.isRunning(PROXY_SERVICE)) {
          // Promoted, holding the restart slot: etcd takes the local endpoint over.
          await this.d.closeKvForRestart(RECORD_HOLD_S);
          await this.stopProxy();
          await sup.ensure(this.etcdSpec(member(true)), { restart: meshOnly });
          log.info("a voter now: etcd serves the local endpoint itself (restarted with it, the grpc-proxy stopped)");
          return { role: "voter", consensusNote: "etcd member" };
        }
        this.upstreams.follow([]);
        const spec = this.etcdSpec(member(true));
        const out = await sup.ensure(spec);
        if (out !== "running") log.info(`etcd member ${out}`);
        else if (this.holdsRestartSlot) await this.releaseRestartSlot(name);
        else await this.restartIfUpgraded(s, spec, name);
        return { role: learner ? "learner" : "voter", consensusNote: "etcd member" };
      }
      case "bootstrap": {
        const newToken = `raptiformica-${randomBytes(8).toString("hex")}`;
        await this.d.local.update((m) => ({ ...m, [KEYS.clusterToken]: newToken }));
        await this.stopProxy();
        await sup.ensure(this.etcdSpec({ ...base, state: "new", initialCluster: new Map([[name, myPeer]]), token: newToken }));
        log.info(`bootstrapped a new etcd cluster (${newToken}) as its first member`);
        return { role: "voter", consensusNote: "bootstrapped" };
      }
      case "join-as-member": {
        this.d.closeKv();
        // A learner refuses reads, writes and leases until it is promoted: the local endpoint
        // stays on (or moves to) the grpc-proxy to the voters meanwhile, and etcd listens on the
        // mesh address only.
        if (voters.length > 0) await this.ensureProxy(s, voters, settings);
        await sup.ensure(this.etcdSpec({ ...base, state: "existing", initialCluster: plan.initialCluster, token, localClients: voters.length === 0 }));
        log.info(`joining etcd as a learner (cluster: ${[...plan.initialCluster.keys()].join(", ")})`);
        return { role: "learner", consensusNote: "joining as a member" };
      }
      case "proxy": {
        await sup.stop(ETCD_SERVICE);
        const endpoints = await this.ensureProxy(s, plan.endpoints, settings);
        return { proxyEndpoints: endpoints, role: "proxy", consensusNote: "proxy" };
      }
      case "rejoin": {
        await sup.stop(ETCD_SERVICE);
        this.d.closeKv();
        // Keep the old data (nothing is deleted); a fresh join starts from an empty dir.
        const aside = `${this.d.node.etcdData}.removed-${Date.now()}`;
        renameSync(this.d.node.etcdData, aside);
        log.warn(`${plan.reason}: moved its etcd data to ${aside} and joining again`);
        // The local endpoint answers through the voters until this member is placed again.
        if (voters.length > 0) await this.ensureProxy(s, voters, settings);
        return { role: undefined };
      }
      case "wait":
        // No voter to follow meanwhile (a proxy already running keeps its upstreams).
        this.upstreams.follow([]);
        if (s.consensusNote !== plan.reason) log.info(plan.reason);
        return { consensusNote: plan.reason };
    }
  }
}
