import type { LocalConfig } from "../config/local.ts";
import type { CachePaths } from "../config/paths.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { nextInterval, TickPause } from "./agent-interval.ts";
import { initialState, phaseOf, statusOf, type ClusterChange, type NodeState } from "./agent-state.ts";
import { ConfigView, etcdConfigKv } from "./config-view.ts";
import { HookQueue } from "./hook-queue.ts";
import type { NodePaths } from "./paths.ts";
import { writeStatusQuietly } from "./status.ts";
import { ConsensusStep } from "./step-consensus.ts";
import { fireClusterChange } from "./step-hooks.ts";
import { KvSession } from "./step-kv-session.ts";
import { LeaderDuties, etcdLeaderKv } from "./step-leader.ts";
import { LinkReporter } from "./step-links.ts";
import { FailureWatch } from "./failure-watch.ts";
import { revokeNodeRecord } from "../consensus/registry.ts";
import { LINKS_PREFIX } from "../consensus/links.ts";
import { hostAnswers } from "../util/tcp-probe.ts";
import type { PeerInfo } from "../mesh/yggdrasil/admin.ts";
import { MeshStep } from "./step-mesh.ts";
import { Supervisor } from "./supervisor.ts";
import { applyChange } from "./watch-routing.ts";

export { ETCD_SERVICE, PROXY_SERVICE, displayName, type ClusterChange } from "./agent-state.ts";

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
  /** Reconcile period once the node is ready; faster while it is converging (see nextInterval). */
  readonly steadyIntervalMs?: number;
  readonly busyIntervalMs?: number;
  /** Keep this member's link report in the KV (node/step-links.ts); default true. */
  readonly linkReports?: boolean;
}

/**
 * The reconcile loop of a member. Each tick runs the steps in order over one NodeState:
 * config view → identity and mesh → consensus (probe → plan → apply) → KV session (client,
 * node record, link report on its lease, watch) → on the etcd leader, its duties (voters, eviction);
 * on every voter, the failure watch (node/failure-watch.ts, between ticks). Watched changes
 * are routed by routeChange and batched into the cluster_change hook. It never deletes state
 * because the cluster is unreachable: it keeps the mesh up from the local cache and retries.
 */
export class Agent {
  private readonly state: NodeState = initialState();
  private readonly startedAt = Date.now();
  private readonly hooks: HookQueue<ClusterChange>;
  private readonly config: ConfigView;
  private readonly mesh: MeshStep;
  private readonly consensus: ConsensusStep;
  private readonly session: KvSession;
  private readonly leader: LeaderDuties;
  private readonly links: LinkReporter | undefined;
  private readonly failures: FailureWatch;
  private lastError?: string;
  private stopped = false;
  private readonly pause = new TickPause();
  private busyTicks = 0;

  constructor(private readonly o: AgentOptions) {
    const { log, local, node } = o;
    const poke = () => this.poke();
    const ctx = { node, cache: o.cache, supervisor: new Supervisor(node.runDir, node.logDir), log, local, yggdrasilBinary: o.yggdrasilBinary, etcdBinary: o.etcdBinary };
    this.config = new ConfigView({
      local,
      log,
      lastGoodSettingsPath: node.lastGoodSettings,
      kv: () => (this.session.client && this.session.seeded ? etcdConfigKv(this.session.client) : undefined),
      openKv: () => (this.session.client ? etcdConfigKv(this.session.client) : undefined),
    });
    this.hooks = new HookQueue((changes) => fireClusterChange(changes, { mapping: () => this.config.mapping(), installDir: o.installDir, cacheDir: o.cache.root, log }));
    const links = o.linkReports === false ? undefined : new LinkReporter({ log, readPeers: () => this.mesh.peers(), readTreeParent: () => this.mesh.treeParent() });
    this.links = links;
    this.mesh = new MeshStep({ ...ctx, writeShared: (c) => this.config.write(c), ...(links ? { onPeers: (peers: PeerInfo[]) => links.observe(peers) } : {}) });
    this.consensus = new ConsensusStep({ ...ctx, kv: () => this.session.client, closeKv: () => this.session.close(), closeKvForRestart: (s) => this.session.closeForRestart(s), poke });
    this.failures = new FailureWatch({
      log,
      probe: hostAnswers,
      revoke: async (publicKey) => {
        const kv = this.session.client;
        return kv ? revokeNodeRecord(kv, publicKey) : undefined;
      },
      readReports: async () => {
        const kv = this.session.client;
        return new Map(kv ? Object.entries(await kv.getAll().prefix(LINKS_PREFIX).strings()) : []);
      },
    });
    this.session = new KvSession({
      ...ctx,
      config: this.config,
      version: o.version,
      startedAt: this.startedAt,
      onChange: (t, k, v, revision) => {
        this.failures.observe(t, k, v);
        applyChange(t, k, v, { state: this.state, config: this.config, hooks: this.hooks, poke }, revision);
      },
      poke,
    });
    this.leader = new LeaderDuties(log, poke);
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
      await this.writeStatus();
      if (this.stopped) break;
      const s = this.state;
      const next = nextInterval(
        { ready: phaseOf(s) === "ready", leader: s.role === "leader", voterChangePending: s.voterChangePending, voterDueMs: s.voterDueMs, busyTicks: this.busyTicks },
        { steadyMs: this.o.steadyIntervalMs, busyMs: this.o.busyIntervalMs },
      );
      this.busyTicks = next.busyTicks;
      await this.pause.wait(next.ms);
    }
  }

  /** Reconcile now (SIGUSR1, `members --rejoin`, a watched change). */
  poke(): void {
    this.pause.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    this.hooks.close();
    this.consensus.stop();
    this.links?.stop();
    this.failures.stop();
    this.mesh.stop();
    this.config.stop();
    await this.session.stop();
  }

  /** Graceful leave: drop the node record now rather than after its TTL. */
  async leave(): Promise<void> {
    await this.session.leave();
  }

  async tick(): Promise<void> {
    const s = this.state;
    const merge = (changes: Partial<NodeState>) => void Object.assign(s, changes);
    const mapping = await this.config.mapping();
    const settings = await this.config.settings(mapping);
    const { info, identity } = await this.mesh.run(mapping, settings);
    merge({ info, identity, meshed: true });
    await this.mesh.registerSelf(mapping, settings, identity, info);
    const waiting = await this.consensus.certify(mapping, identity);
    if (waiting) return merge({ consensusNote: waiting });
    const decided = await this.consensus.decide(s, mapping, settings, identity);
    merge(decided.changes);
    merge(await this.consensus.apply(s, decided.plan, mapping, settings, identity, decided.members));
    const seen = await this.session.connect(s, settings);
    if (!seen) return;
    merge(seen);
    // A record write that fails (a KV slow to answer) is the tick's error, but only once the
    // steps after it have run: a leader whose own record write timed out must still replace a
    // dead voter, and a voter still judge its neighbours.
    const unregistered = await this.session.register(s, settings).then(
      (r) => void merge(r),
      (e: unknown) => e,
    );
    await this.links?.tick({ publicKey: identity.publicKey, major: info.major, lease: this.session.lease });
    await this.session.watch();
    const kv = this.session.client;
    // Only where this member reports its own links: its report is where the evidence starts.
    const judge = kv && (s.role === "leader" || s.role === "voter") && this.links ? { self: identity.publicKey, agentPort: settings.agentPort } : undefined;
    // The link reports are watched only while judged by: a new watch missed what came before it.
    if (await this.session.watchLinks(judge !== undefined)) this.failures.reseed();
    this.failures.follow(judge);
    if (kv && s.role === "leader") merge(await this.leader.run(etcdLeaderKv(kv, this.o.node), settings, identity.publicKey, () => this.config.kvCopy, s.voterChangePending));
    if (unregistered !== undefined) throw unregistered;
  }

  private async writeStatus(): Promise<void> {
    const extra = { connected: this.session.client !== undefined, startedAt: this.startedAt, lastError: this.lastError, build: this.o.build };
    await writeStatusQuietly(this.o.node, statusOf(this.state, extra));
  }
}
