import type { FlatMapping } from "../config/flatten.ts";
import type { NodeRecord, Role } from "../consensus/registry.ts";
import { mixedMajorProblem, parseNeighbours, sameNeighbour, selfNeighbour, type Neighbour } from "../mesh/neighbours.ts";
import { loadOrCreateIdentity, type Identity } from "../mesh/yggdrasil/identity.ts";
import { detectYggdrasil, type YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import { UserError } from "../util/errors.ts";
import type { Advertised } from "./advertised.ts";

/**
 * What a node says about itself, in one place: its identity on the mesh (made once, kept in the
 * node dir), its own neighbour entry in the shared config, and its live node record. `mesh`
 * (ops/node.ts) and the agent's steps (step-mesh.ts, step-kv-session.ts) all go through here,
 * so the entry `mesh` writes before the agent starts is the one the agent keeps.
 */

export interface NodeIdentity {
  readonly info: YggdrasilInfo;
  readonly identity: Identity;
}

/**
 * The installed Yggdrasil (`binary`, a name on PATH or a path) and this node's key pair in
 * `yggdrasilDir`, made there on first use and the same ever after. Throws a UserError when
 * yggdrasil is missing or not recognised; the key file's own errors (a damaged key is never
 * replaced) as loadOrCreateIdentity throws them.
 */
export async function loadNodeIdentity(yggdrasilDir: string, binary: string): Promise<NodeIdentity> {
  const detected = await detectYggdrasil(binary);
  if (!detected.ok) throw new UserError(detected.error);
  return { info: detected.value, identity: await loadOrCreateIdentity(yggdrasilDir, detected.value) };
}

/**
 * Throws a UserError (naming the odd nodes) when the other neighbours of `mapping` run another
 * Yggdrasil major than this node: 0.4 and 0.5 never peer, so such a node would split the mesh.
 */
export function requireClusterMajor(mapping: FlatMapping, id: NodeIdentity): void {
  const mixed = mixedMajorProblem(mapping, id.identity.publicKey, id.info.major);
  if (mixed) throw new UserError(mixed);
}

/** The facts of a node's own neighbour entry that come from the node itself. */
export interface SelfFacts extends NodeIdentity {
  /** The Yggdrasil listen port of the cluster's settings. */
  readonly yggdrasilPort: number;
  /** How tables name it (agent-state.ts `displayName`). */
  readonly name: string;
}

/**
 * This node's own neighbour entry as it registers itself in `mapping` (pure): identity, port,
 * major and name from `self`; host and SSH port from `advertised` (else what the entry had);
 * an instance id (`spawn`) kept; never `left`. `changed` is false when the entry in `mapping`
 * already stores exactly this, so a caller can skip the write.
 */
export function selfEntry(mapping: FlatMapping, self: SelfFacts, advertised: Advertised | undefined): { entry: Neighbour; changed: boolean } {
  const current = parseNeighbours(mapping).find((n) => n.publicKey === self.identity.publicKey);
  const entry = selfNeighbour(
    current,
    { publicKey: self.identity.publicKey, meshAddress: self.identity.address, yggdrasilPort: self.yggdrasilPort, yggdrasilMajor: self.info.major, name: self.name },
    advertised,
  );
  return { entry, changed: !sameNeighbour(current, entry) };
}

/** What the node record holds beyond the node's identity: its state as the agent sees it. */
export interface RecordFacts {
  readonly role: Role;
  /** When this agent started, ms since the epoch. */
  readonly startedAt: number;
  readonly hostname: string;
  /** raptiformica's version on the node. */
  readonly version: string;
  /** Built-in job labels (node/labels.ts). */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * This node's live record (`raptiformica/nodes/<key>`, consensus/registry.ts) (pure): the same
 * key, mesh address, name and major as its neighbour entry ({@link selfEntry}); the host only
 * when one was advertised.
 */
export function selfRecord(self: Omit<SelfFacts, "yggdrasilPort">, advertised: Advertised | undefined, facts: RecordFacts): NodeRecord {
  return {
    publicKey: self.identity.publicKey,
    name: self.name,
    meshAddress: self.identity.address,
    ...(advertised ? { host: advertised.host } : {}),
    role: facts.role,
    startedAt: facts.startedAt,
    hostname: facts.hostname,
    version: facts.version,
    yggdrasilMajor: self.info.major,
    ...(facts.labels ? { labels: facts.labels } : {}),
  };
}
