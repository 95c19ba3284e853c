import type { FlatMapping } from "../config/flatten.ts";
import type { ClusterSettings } from "../consensus/settings.ts";
import { withNeighbour } from "../mesh/neighbours.ts";
import type { Identity } from "../mesh/yggdrasil/identity.ts";
import { yggdrasilBinary, type YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import { readAdvertised } from "./advertised.ts";
import { loadNodeIdentity, requireClusterMajor, selfEntry, type NodeIdentity } from "./self.ts";
import { displayName, type StepContext } from "./agent-state.ts";
import { MeshService } from "./mesh-service.ts";
import { ProbeListener } from "./probe-listener.ts";

export interface MeshStepDeps extends StepContext {
  /** Writes the shared config (KV or local cache: see ConfigView.write). */
  readonly writeShared: (change: (m: FlatMapping) => FlatMapping) => Promise<void>;
}

/**
 * Identity and mesh: the yggdrasil version and this node's key pair (made once, kept in the
 * node dir), yggdrasil running with the cluster's peers and keys, and this node's own
 * neighbour entry in the shared config. Throws (a UserError) when yggdrasil is missing or its
 * major version differs from the cluster's.
 */
export class MeshStep {
  private id?: NodeIdentity;
  private mesh?: MeshService;
  private readonly liveness: ProbeListener;

  constructor(private readonly d: MeshStepDeps) {
    this.liveness = new ProbeListener(d.log);
  }

  /** Identity and yggdrasil; then call `registerSelf`. */
  async run(mapping: FlatMapping, settings: ClusterSettings): Promise<{ info: YggdrasilInfo; identity: Identity; meshed: true }> {
    const { info, identity, mesh } = await this.ensureIdentity(mapping);
    await mesh.ensure(mapping, settings.yggdrasilPort);
    await this.liveness.ensure(identity.address, settings.agentPort);
    return { info, identity, meshed: true };
  }

  stop(): void {
    this.mesh?.stopPeerLoop();
    this.liveness.stop();
  }

  private async ensureIdentity(mapping: FlatMapping): Promise<NodeIdentity & { mesh: MeshService }> {
    this.id ??= await loadNodeIdentity(this.d.node.yggdrasilDir, this.d.yggdrasilBinary ?? yggdrasilBinary());
    const { info, identity } = this.id;
    requireClusterMajor(mapping, this.id);
    if (!this.mesh) {
      this.mesh = new MeshService(this.d.node, info, identity, this.d.supervisor, this.d.log);
      this.mesh.startPeerLoop();
    }
    return { info, identity, mesh: this.mesh };
  }

  /** This node's neighbour entry (node/self.ts `selfEntry`), written only when it differs from the one in the config. */
  async registerSelf(mapping: FlatMapping, settings: ClusterSettings, identity: Identity, info: YggdrasilInfo): Promise<void> {
    const advertised = readAdvertised(this.d.cache.lastAdvertised);
    const { entry, changed } = selfEntry(mapping, { info, identity, yggdrasilPort: settings.yggdrasilPort, name: displayName() }, advertised.ok ? advertised.value : undefined);
    if (changed) await this.d.writeShared((m) => withNeighbour(m, entry));
  }
}
