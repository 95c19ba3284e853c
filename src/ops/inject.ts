import type { Context } from "./context.ts";
import { clusterSettings } from "../consensus/settings.ts";
import type { FlatMapping } from "../config/flatten.ts";
import { requireHost } from "../mesh/host.ts";
import { withRegisteredNeighbour } from "../mesh/neighbours.ts";
import { pokeAgent } from "../node/agent-lock.ts";
import { SharedConfig } from "../node/shared-config.ts";

export interface NeighbourRegistration {
  readonly host: string;
  readonly sshPort: number;
  readonly publicKey: string;
  readonly yggdrasilPort?: number;
}

/**
 * Registers a machine as a neighbour (mesh/neighbours.ts `withRegisteredNeighbour`) — in the
 * cluster KV when this machine is a member, else in the local config — and pokes the local
 * agent so it dials the machine now. Like the original, a different machine registered under
 * the same host is replaced. Without `yggdrasilPort` the cluster's setting is recorded. The
 * host must pass `parseHost` (a UserError naming it otherwise, before anything is written).
 * Returns the config as it is afterwards and whether it went to the cluster.
 * @throws UserError when the host is not usable (before anything is written), or the local config cannot be written.
 * @throws ClusterUnavailable when the cluster KV does not answer the write in time.
 */
export async function registerNeighbour(ctx: Context, r: NeighbourRegistration): Promise<{ mapping: FlatMapping; inCluster: boolean }> {
  // Whoever calls (inject, slave, spawn), the host goes into the KV only in the form the
  // members can dial; compared in that form, "[::1]" and "::1" are one host.
  const host = requireHost(r.host, "the neighbour's host", "as its SSH port");
  const shared = await SharedConfig.open(ctx.config, ctx.node, ctx.log);
  try {
    const { mapping } = await shared.snapshot();
    const port = r.yggdrasilPort ?? clusterSettings(mapping).yggdrasilPort;
    const after = await shared.update((m) => withRegisteredNeighbour(m, { publicKey: r.publicKey, host, sshPort: r.sshPort, yggdrasilPort: port }));
    pokeAgent(ctx.node);
    return { mapping: after, inCluster: shared.isCluster };
  } finally {
    shared.close();
  }
}
