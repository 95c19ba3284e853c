import type { Context } from "./context.ts";
import { typeStatuses } from "../config/types.ts";
import { fireHook } from "../hooks/runner.ts";

/**
 * Fires a hook on this machine (the operator's side of `slave`/`spawn`: after_slave,
 * after_start_instance, after_assimilate). A failing handler is reported and makes the command
 * exit non-zero at the end, but does not undo or stop the steps already done.
 * Throws nothing for a handler that fails or cannot start (see above), nor without a platform type here (no hook runs).
 */
export async function fireLocalHook(ctx: Context, hook: string, fields: Record<string, unknown>): Promise<void> {
  const { mapping } = ctx.config.snapshot();
  const platform = (await typeStatuses(mapping, "platform", ctx.probe)).find((s) => s.available)?.name;
  if (!platform) return;
  const report = await fireHook(mapping, platform, { hook, time: new Date().toISOString(), ...fields }, {
    installDir: ctx.installDir,
    cacheDir: ctx.paths.root,
    log: ctx.log,
    live: ctx.log.verbose,
  });
  if (report.outcomes.some((o) => o.status === "failed")) process.exitCode = 1;
}
