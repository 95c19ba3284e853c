/**
 * One simulated member for bench/sim-members.ts: the agent's KV side with the project's own
 * modules and nothing else — the KV session (its own etcd client, the lease-backed node record,
 * the watch on raptiformica/), the config view (the watched copy of the shared config, patched
 * by routeChange/applyChange, re-read when older than KV_COPY_MAX_AGE_MS), and on the etcd
 * leader its duties (voter manager over the node records, eviction pass). No mesh, no etcd or
 * yggdrasil of its own, no files but the ones the session reads (absent here).
 */
import type { FlatMapping } from "../../src/config/flatten.ts";
import type { LocalConfig } from "../../src/config/local.ts";
import type { CachePaths } from "../../src/config/paths.ts";
import type { TlsFiles } from "../../src/consensus/client.ts";
import { resolveSettingsOnce, type ClusterSettings } from "../../src/consensus/settings.ts";
import type { Role } from "../../src/consensus/registry.ts";
import { initialState, type NodeState } from "../../src/node/agent-state.ts";
import { nextInterval, TickPause } from "../../src/node/agent-interval.ts";
import { ConfigView, etcdConfigKv } from "../../src/node/config-view.ts";
import type { NodePaths } from "../../src/node/paths.ts";
import { KvSession } from "../../src/node/step-kv-session.ts";
import { LeaderDuties, etcdLeaderKv } from "../../src/node/step-leader.ts";
import type { Supervisor } from "../../src/node/supervisor.ts";
import { applyChange } from "../../src/node/watch-routing.ts";
import type { Identity } from "../../src/mesh/yggdrasil/identity.ts";
import type { YggdrasilInfo } from "../../src/mesh/yggdrasil/version.ts";
import type { Logger } from "../../src/util/log.ts";
import { errorMessage } from "../../src/util/errors.ts";

export interface SimMemberOptions {
  readonly index: number;
  readonly publicKey: string;
  /** Its mesh address: for a voter, the address its etcd peers on (so the voter manager sees its record). */
  readonly address: string;
  readonly role: Extract<Role, "voter" | "proxy">;
  /** The etcd client port on 127.0.0.1 this member talks to (its "local" etcd). */
  readonly clientPort: number;
  readonly peerPort: number;
  readonly tls: TlsFiles;
  /** What its local cache holds (the seed of an empty KV). */
  readonly cache: FlatMapping;
  /** A directory that does not exist: the session looks for last_advertised / pending config there. */
  readonly noFiles: string;
  readonly steadyMs: number;
  /** Called for every watched change, after the agent's own routing applied it. */
  readonly onWatched?: (m: SimMember, key: string) => void;
  /** Called after every tick (ok or not). */
  readonly onTick?: (m: SimMember, error?: string) => void;
}

const quiet: Logger = { verbose: false, debug: () => undefined, info: () => undefined, warn: () => undefined };

export class SimMember {
  readonly state: NodeState = initialState();
  readonly config: ConfigView;
  private readonly session: KvSession;
  private readonly leader: LeaderDuties;
  private stopped = false;
  private readonly pause = new TickPause();
  private busyTicks = 0;
  private loop?: Promise<void>;
  /** performance.now() when the loop started, and when the node record was first written. */
  startedAt = 0;
  registeredAt: number | undefined;
  lastError: string | undefined;
  errors = 0;

  constructor(readonly o: SimMemberOptions) {
    const node = { ...o.tls } as unknown as NodePaths;
    const cache = { lastAdvertised: `${o.noFiles}/last_advertised`, pendingConfig: `${o.noFiles}/pending_config.jsonl` } as unknown as CachePaths;
    const local = {
      snapshot: () => ({ mapping: o.cache, origin: "mutable-config" }),
      update: async (change: (m: FlatMapping) => FlatMapping) => change({ ...o.cache }),
      // The mirror into the local cache is a file write on a real member: left out here.
      store: { update: async () => undefined },
    } as unknown as LocalConfig;
    const supervisor = { isRunning: () => true } as unknown as Supervisor;
    const poke = () => this.pause.poke();
    this.config = new ConfigView({
      local,
      log: quiet,
      lastGoodSettingsPath: `${o.noFiles}/settings.json`,
      kv: () => (this.session.client && this.session.seeded ? etcdConfigKv(this.session.client) : undefined),
      openKv: () => (this.session.client ? etcdConfigKv(this.session.client) : undefined),
    });
    this.session = new KvSession({
      node,
      cache,
      supervisor,
      log: quiet,
      local,
      config: this.config,
      version: "sim",
      startedAt: Date.now(),
      onChange: (t, k, v, revision) => {
        applyChange(t, k, v, { state: this.state, config: this.config, hooks: { push: () => undefined }, poke }, revision);
        o.onWatched?.(this, k);
      },
      poke,
    });
    this.leader = new LeaderDuties(quiet, poke);
    const identity: Identity = { publicKey: o.publicKey, privateKey: "", address: o.address };
    const info: YggdrasilInfo = { binary: "yggdrasil", major: "0.5", version: "0.5.12" };
    Object.assign(this.state, { identity, info, meshed: true, role: o.role });
  }

  start(): void {
    this.startedAt = performance.now();
    this.loop = this.run();
  }

  /** The agent's loop (Agent.run) without the status file: tick, then nextInterval's pause or a poke. */
  private async run(): Promise<void> {
    while (!this.stopped) {
      let error: string | undefined;
      try {
        await this.tick();
      } catch (e) {
        error = errorMessage(e);
        this.errors++;
        this.lastError = error;
      }
      this.o.onTick?.(this, error);
      if (this.stopped) break;
      const s = this.state;
      const next = nextInterval({ ready: s.registered, leader: s.role === "leader", voterChangePending: s.voterChangePending, voterDueMs: s.voterDueMs, busyTicks: this.busyTicks }, { steadyMs: this.o.steadyMs });
      this.busyTicks = next.busyTicks;
      await this.pause.wait(next.ms);
    }
  }

  /** Agent.tick from the config view on, without the mesh and consensus steps (no processes here). */
  private async tick(): Promise<void> {
    const s = this.state;
    const merge = (changes: Partial<NodeState>) => void Object.assign(s, changes);
    const mapping = await this.config.mapping();
    // ConfigView.settings would also record the last good settings in a file; the values are
    // the same. The ports are this simulation's.
    const settings: ClusterSettings = { ...resolveSettingsOnce(mapping).settings, clientPort: this.o.clientPort, peerPort: this.o.peerPort };
    const seen = await this.session.connect(s, settings);
    if (!seen) return;
    merge(seen);
    merge(await this.session.register(s, settings));
    this.registeredAt ??= performance.now();
    await this.session.watch();
    const kv = this.session.client;
    if (kv && s.role === "leader") merge(await this.leader.run(etcdLeaderKv(kv, this.o.tls), settings, this.o.publicKey, () => this.config.kvCopy, s.voterChangePending));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pause.poke();
    this.config.stop();
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 3000))]);
    await this.session.stop().catch(() => undefined);
  }
}
