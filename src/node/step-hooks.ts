import type { FlatMapping } from "../config/flatten.ts";
import { createAvailabilityProbe, typeStatuses } from "../config/types.ts";
import { fireHook } from "../hooks/runner.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { ClusterChange } from "./agent-state.ts";

/** What a hook fired by the agent (or a companion of it) needs: the config to find handlers in, and where to run them. */
export interface AgentHookDeps {
  readonly mapping: () => Promise<FlatMapping>;
  readonly installDir: string;
  readonly cacheDir: string;
  readonly log: Logger;
}

/**
 * Fires `hook` of the first available platform with `payload` (the event is `{hook, time,
 * ...payload}`), handlers' output captured. Returns how many handlers it found. Failures are
 * logged, never thrown: a broken handler must not stop the agent.
 */
export async function fireAgentHook(hook: string, payload: Record<string, unknown>, d: AgentHookDeps): Promise<number> {
  try {
    const mapping = await d.mapping();
    const probe = createAvailabilityProbe(d.installDir);
    const platform = (await typeStatuses(mapping, "platform", probe)).find((s) => s.available)?.name;
    if (!platform) return 0;
    const report = await fireHook(mapping, platform, { hook, time: new Date().toISOString(), ...payload }, { installDir: d.installDir, cacheDir: d.cacheDir, log: d.log, live: false });
    return report.outcomes.length;
  } catch (e) {
    d.log.warn(`${hook} hook: ${errorMessage(e)}`);
    return 0;
  }
}

/**
 * Runs the cluster_change hook of the first available platform for a batch of watched
 * changes (the HookQueue debounces and serializes the batches). Failures are logged, never
 * thrown: a broken handler must not stop the agent.
 */
export async function fireClusterChange(changes: ClusterChange[], d: AgentHookDeps): Promise<void> {
  const n = await fireAgentHook("cluster_change", { changes }, d);
  d.log.debug(`cluster_change: ${n} handler(s) for ${changes.length} change(s)`);
}
