import type { FlatMapping } from "../config/flatten.ts";
import type { ClusterSettings } from "../consensus/settings.ts";
import { mixedMajorProblem, parseNeighbours, sameNeighbour, selfNeighbour, withNeighbour } from "../mesh/neighbours.ts";
import { loadOrCreateIdentity, type Identity } from "../mesh/yggdrasil/identity.ts";
import { detectYggdrasil, yggdrasilBinary, type YggdrasilInfo } from "../mesh/yggdrasil/version.ts";
import { readAdvertised } from "./advertised.ts";
import { UserError } from "../util/errors.ts";
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
  private info?: YggdrasilInfo;
  private identity?: Identity;
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

  private async ensureIdentity(mapping: FlatMapping): Promise<{ info: YggdrasilInfo; identity: Identity; mesh: MeshService }> {
    if (!this.info) {
      const detected = await detectYggdrasil(this.d.yggdrasilBinary ?? yggdrasilBinary());
      if (!detected.ok) throw new UserError(detected.error);
      this.info = detected.value;
    }
    if (!this.identity) this.identity = await loadOrCreateIdentity(this.d.node.yggdrasilDir, this.info);
    const mixed = mixedMajorProblem(mapping, this.identity.publicKey, this.info.major);
    if (mixed) throw new UserError(mixed);
    if (!this.mesh) {
      this.mesh = new MeshService(this.d.node, this.info, this.identity, this.d.supervisor, this.d.log);
      this.mesh.startPeerLoop();
    }
    return { info: this.info, identity: this.identity, mesh: this.mesh };
  }

  /** This node's neighbour entry, written only when it differs from the one in the config. */
  async registerSelf(mapping: FlatMapping, settings: ClusterSettings, identity: Identity, info: YggdrasilInfo): Promise<void> {
    const advertised = readAdvertised(this.d.cache.lastAdvertised);
    const current = parseNeighbours(mapping).find((n) => n.publicKey === identity.publicKey);
    const me = selfNeighbour(
      current,
      { publicKey: identity.publicKey, meshAddress: identity.address, yggdrasilPort: settings.yggdrasilPort, yggdrasilMajor: info.major ?? "0.4", name: displayName() },
      advertised.ok ? advertised.value : undefined,
    );
    if (sameNeighbour(current, me)) return;
    await this.d.writeShared((m) => withNeighbour(m, me));
  }
}
