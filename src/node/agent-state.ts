import { hostname } from "node:os";
import type { LocalConfig } from "../config/local.ts";
import type { CachePaths } from "../config/paths.ts";
import type { Role } from "../consensus/registry.ts";
import type { Identity } from "../mesh/yggdrasil/identity.ts";
import type { YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import type { Logger } from "../util/log.ts";
import type { NodePaths } from "./paths.ts";
import type { AgentStatus } from "./status.ts";
import type { Supervisor } from "./supervisor.ts";

/** What every step may use: this node's paths, its processes, the log and the local config. */
export interface StepContext {
  readonly node: NodePaths;
  readonly cache: CachePaths;
  readonly supervisor: Supervisor;
  readonly log: Logger;
  readonly local: LocalConfig;
  readonly yggdrasilBinary?: string | undefined;
  readonly etcdBinary?: string | undefined;
}

/** Supervisor names of the two ways a member runs etcd. */
export const ETCD_SERVICE = "etcd";
export const PROXY_SERVICE = "etcd-proxy";

/**
 * The config-hash suffix of an etcd started without the local endpoint (a learner's, see
 * ConsensusStep.apply): the supervisor's record of it tells a later tick (or a restarted agent)
 * that the local endpoint is the grpc-proxy's.
 */
export const MESH_ONLY = "|mesh-only";

/**
 * Whether this member's etcd was started without the local endpoint (MESH_ONLY): it serves
 * clients on its mesh address only, the grpc-proxy has 127.0.0.1. `running`: and it runs now
 * (false: whatever it was last started as, for a reader outside the agent). Reads the
 * supervisor's record; never throws.
 */
export function etcdServesMeshOnly(sup: Pick<Supervisor, "isRunning" | "hashOf">, running = true): boolean {
  return (!running || sup.isRunning(ETCD_SERVICE)) && (sup.hashOf(ETCD_SERVICE)?.endsWith(MESH_ONLY) ?? false);
}

/** How this node is named in tables: RAPTIFORMICA_NODE_NAME, else the host name. */
export function displayName(): string {
  return process.env["RAPTIFORMICA_NODE_NAME"] || hostname();
}

/** The host of an etcd URL (`https://[addr]:port` → addr). */
export function hostOfUrl(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, "");
}

/** One watched change of a node record or neighbour entry, as handed to the cluster_change hook. */
export interface ClusterChange {
  readonly type: "put" | "delete";
  readonly key: string;
}

/**
 * What the agent knows about this node, in one place. The loop merges what each step returns
 * into it; the comment on each field names the step that produces it. The steps' own
 * bookkeeping (timers, the KV client, the voter clocks) stays inside each step.
 */
export interface NodeState {
  /** identity step: this yggdrasil's version, then its key pair and mesh address. */
  info?: YggdrasilInfo;
  identity?: Identity;
  /** mesh step: yggdrasil has been ensured once. */
  meshed: boolean;
  /** KV session step: the node record has been written once (the agent is ready). */
  registered: boolean;
  /**
   * consensus step: what this node runs (voter, learner, proxy); the KV session step then
   * refines a member's role from etcd's own answer (leader, voter or learner) in the same tick.
   */
  role?: Role;
  /** consensus step: one line on what consensus is doing, for `members` and the status file. */
  consensusNote: string;
  /** consensus step, refreshed by the KV session from etcd's member list: the voters' client URLs. */
  voterEndpoints: readonly string[];
  /** consensus step: the upstreams the local grpc-proxy runs with. */
  proxyEndpoints: readonly string[];
  /** watch: mesh addresses whose node record was deleted and has not come back. */
  readonly recordGone: Set<string>;
  /** watch: how many times the voter log changed (a consensus probe older than that is stale). */
  voterLogChanges: number;
  /** leader step: a voter change is under way (a dead voter in its grace period, a learner). */
  voterChangePending: boolean;
  /** leader step: ms until the first dead voter's grace period ends; undefined when none is in one. */
  voterDueMs: number | undefined;
}

export function initialState(): NodeState {
  return {
    meshed: false,
    registered: false,
    consensusNote: "",
    voterEndpoints: [],
    proxyEndpoints: [],
    recordGone: new Set(),
    voterLogChanges: 0,
    voterChangePending: false,
    voterDueMs: undefined,
  };
}

/** The phase shown in the status file: it only ever moves forward. */
export function phaseOf(s: NodeState): AgentStatus["phase"] {
  return s.registered ? "ready" : s.meshed ? "meshed" : "starting";
}

/** The status file's content for this state (`connected`: a KV client is open). */
export function statusOf(
  s: NodeState,
  o: { readonly connected: boolean; readonly startedAt: number; readonly lastError?: string | undefined; readonly build?: string | undefined },
): AgentStatus {
  const phase = phaseOf(s);
  return {
    pid: process.pid,
    phase,
    ...(s.identity ? { publicKey: s.identity.publicKey, meshAddress: s.identity.address } : {}),
    ...(s.role ? { role: s.role } : {}),
    consensus: s.consensusNote,
    kv: o.connected && phase === "ready" ? "connected" : "unreachable",
    updatedAt: Date.now(),
    startedAt: o.startedAt,
    ...(o.lastError ? { lastError: o.lastError } : {}),
    ...(o.build ? { build: o.build } : {}),
  };
}
