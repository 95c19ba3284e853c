import type { FlatMapping } from "../config/flatten.ts";
import type { ClusterSettings } from "../consensus/settings.ts";
import { parseNeighbours, targetMeshMajor, withNeighbour, MESH_MAJOR_KEY } from "../mesh/neighbours.ts";
import type { PeerInfo } from "../mesh/yggdrasil/admin.ts";
import type { Identity } from "../mesh/yggdrasil/identity.ts";
import { detectYggdrasil, yggdrasilBinary, type YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import { readAdvertised } from "./advertised.ts";
import { loadNodeIdentity, requireClusterMajor, selfEntry, type NodeIdentity } from "./self.ts";
import { displayName, type StepContext } from "./agent-state.ts";
import { MeshService } from "./mesh-service.ts";
import { HostsFile, hostsFilePath } from "./hosts-file.ts";

/** How often a member left behind by a migration looks again for the new Yggdrasil binary. */
export const SWITCH_RECHECK_MS = 10_000;
import { ProbeListener } from "./probe-listener.ts";

export interface MeshStepDeps extends StepContext {
  /** Writes the shared config (KV or local cache: see ConfigView.write). */
  readonly writeShared: (change: (m: FlatMapping) => FlatMapping) => Promise<void>;
  /** Told what getPeers said at each look of the mesh's peer loop (MeshService.watchPeers). */
  readonly onPeers?: (peers: PeerInfo[]) => void;
}

/**
 * Identity and mesh: the yggdrasil version and this node's key pair (made once, kept in the
 * node dir), yggdrasil running with the cluster's peers and keys, this node's own neighbour
 * entry in the shared config, and the members' names in /etc/hosts (hosts-file.ts). Throws (a UserError) when yggdrasil is missing or its
 * major version differs from the cluster's.
 */
export class MeshStep {
  private id?: NodeIdentity;
  private mesh?: MeshService;
  private readonly liveness: ProbeListener;
  private readonly names: HostsFile;
  private lastSwitchCheck = 0;
  private switchWarned = "";

  constructor(private readonly d: MeshStepDeps) {
    this.liveness = new ProbeListener(d.log);
    this.names = new HostsFile(hostsFilePath(), d.log);
  }

  /** Identity and yggdrasil; then call `registerSelf`. */
  async run(mapping: FlatMapping, settings: ClusterSettings): Promise<{ info: YggdrasilInfo; identity: Identity; meshed: true }> {
    const { info, identity, mesh } = await this.ensureIdentity(mapping);
    await mesh.ensure(mapping, settings.yggdrasilPort, settings.agentPort);
    await this.liveness.ensure(identity.address, settings.agentPort);
    await mesh.listenForNotices(identity.address, settings.agentPort);
    this.names.sync(parseNeighbours(mapping));
    return { info, identity, meshed: true };
  }

  /**
   * This node's peerings as getPeers gives them now (MeshService.peers).
   * @throws Error before the mesh has run once; YggdrasilAdminError when yggdrasil does not answer.
   */
  async peers(): Promise<PeerInfo[]> {
    if (!this.mesh) throw new Error("the mesh has not been started yet");
    return this.mesh.peers();
  }

  /** 0.5: this node's parent in the spanning tree (MeshService.treeParent); undefined before the mesh runs, or on 0.4. */
  async treeParent(): Promise<string | undefined> {
    return this.mesh?.treeParent();
  }

  stop(): void {
    this.mesh?.stopPeerLoop();
    this.liveness.stop();
  }

  private async ensureIdentity(mapping: FlatMapping): Promise<NodeIdentity & { mesh: MeshService }> {
    this.id ??= await loadNodeIdentity(this.d.node.yggdrasilDir, this.d.yggdrasilBinary ?? yggdrasilBinary());
    await this.followMigration(mapping);
    const { info, identity } = this.id;
    requireClusterMajor(mapping, this.id);
    if (!this.mesh) {
      this.mesh = new MeshService(this.d.node, info, identity, this.d.supervisor, this.d.log);
      if (this.d.onPeers) this.mesh.watchPeers(this.d.onPeers);
      this.mesh.startPeerLoop();
    }
    return { info, identity, mesh: this.mesh };
  }

  /**
   * The switch of a migration (`migrate-mesh`): when the cluster chose another Yggdrasil major
   * (MESH_MAJOR_KEY) than the one this node runs, and the installed binary now is that major,
   * yggdrasil is restarted on it with the same key (so the same mesh address; 0.4 and 0.5
   * derive it alike), its config rendered for the new major; registerSelf then records the new
   * major. Until the binary is there, a warning says what to do, once per change, and the
   * binary is looked at again every SWITCH_RECHECK_MS. Never throws.
   */
  private async followMigration(mapping: FlatMapping): Promise<void> {
    const id = this.id;
    const target = targetMeshMajor(mapping);
    if (!id || target === undefined || target === id.info.major) return;
    const now = Date.now();
    if (now - this.lastSwitchCheck < SWITCH_RECHECK_MS) return;
    this.lastSwitchCheck = now;
    const fresh = await detectYggdrasil(id.info.binary);
    if (!fresh.ok || fresh.value.major !== target) {
      const has = fresh.ok ? `Yggdrasil ${fresh.value.version}` : `no usable Yggdrasil (${fresh.error})`;
      const warning = `the cluster has moved to Yggdrasil ${target} (config key ${MESH_MAJOR_KEY}), but this node has ${has} installed, so it is cut off from the mesh: install Yggdrasil ${target} here (\`raptiformica slave\` of this host from the operator, or \`raptiformica migrate-mesh\` again).`;
      if (warning !== this.switchWarned) this.d.log.warn(warning);
      this.switchWarned = warning;
      return;
    }
    this.d.log.info(`switching the mesh from Yggdrasil ${id.info.version} to ${fresh.value.version}: the cluster has moved to ${target}`);
    this.switchWarned = "";
    this.mesh?.stopPeerLoop();
    this.mesh = undefined;
    // The new service renders its config for the new major; the config hash differs, so the
    // supervisor restarts yggdrasil on the new binary at its first ensure.
    this.id = { info: fresh.value, identity: id.identity };
  }

  /** This node's neighbour entry (node/self.ts `selfEntry`), written only when it differs from the one in the config. */
  async registerSelf(mapping: FlatMapping, settings: ClusterSettings, identity: Identity, info: YggdrasilInfo): Promise<void> {
    const advertised = readAdvertised(this.d.cache.lastAdvertised);
    const { entry, changed } = selfEntry(mapping, { info, identity, yggdrasilPort: settings.yggdrasilPort, name: displayName() }, advertised.ok ? advertised.value : undefined);
    if (changed) await this.d.writeShared((m) => withNeighbour(m, entry));
  }
}
