import type { FlatMapping } from "../config/flatten.ts";
import { createAvailabilityProbe, typeStatuses } from "../config/types.ts";
import { fireHook } from "../hooks/runner.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { ClusterChange } from "./agent-state.ts";

/**
 * Runs the cluster_change hook of the first available platform for a batch of watched
 * changes (the HookQueue debounces and serializes the batches). Failures are logged, never
 * thrown: a broken handler must not stop the agent.
 */
export async function fireClusterChange(
  changes: ClusterChange[],
  d: { readonly mapping: () => Promise<FlatMapping>; readonly installDir: string; readonly cacheDir: string; readonly log: Logger },
): Promise<void> {
  try {
    const mapping = await d.mapping();
    const probe = createAvailabilityProbe(d.installDir);
    const platform = (await typeStatuses(mapping, "platform", probe)).find((s) => s.available)?.name;
    if (!platform) return;
    const report = await fireHook(
      mapping,
      platform,
      { hook: "cluster_change", time: new Date().toISOString(), changes },
      { installDir: d.installDir, cacheDir: d.cacheDir, log: d.log, live: false },
    );
    d.log.debug(`cluster_change: ${report.outcomes.length} handler(s) for ${changes.length} change(s)`);
  } catch (e) {
    d.log.warn(`cluster_change hook: ${errorMessage(e)}`);
  }
}
