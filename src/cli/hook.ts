import type { Command } from "commander";
import { typeStatuses } from "../config/types.ts";
import { fireHook } from "../hooks/runner.ts";
import { UserError } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { printable } from "../util/printable.ts";

function parsePayload(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`--payload is not valid JSON (${(e as Error).message}). Give a JSON object, e.g. --payload '{"reason":"manual"}'.`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UserError(`--payload must be a JSON object, e.g. --payload '{"reason":"manual"}'.`);
  }
  return parsed as Record<string, unknown>;
}

export function register(program: Command): void {
  program
    .command("hook")
    .description("fire every handler of hook NAME (the event goes to each handler as JSON on stdin)")
    .argument("<name>", "hook name, e.g. cluster_change, after_mesh")
    .option("--payload <json>", "JSON object merged into the event handlers receive")
    .action(async (name: string, opts: { payload?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const extra = parsePayload(opts.payload);
      const { mapping } = ctx.config.snapshot();
      const platform = (await typeStatuses(mapping, "platform", ctx.probe)).find((s) => s.available)?.name;
      if (platform === undefined) {
        throw new UserError("No platform type is available on this machine, so no hook handlers can run. See `raptiformica config types`.");
      }
      const report = await fireHook(
        mapping,
        platform,
        { ...extra, hook: name, time: new Date().toISOString() },
        { installDir: ctx.installDir, cacheDir: ctx.paths.root, log: ctx.log, live: true },
      );
      const ran = report.outcomes.filter((o) => o.status === "ran").length;
      const skipped = report.outcomes.filter((o) => o.status === "skipped").length;
      const failed = report.outcomes.filter((o) => o.status === "failed");
      ctx.log.info(
        `hook ${name}: ${report.outcomes.length} handler(s): ${ran} ran, ${skipped} skipped, ${failed.length} failed` +
          (failed.length ? ` (${failed.map((f) => `${printable(f.handler)}: ${f.timedOut ? "timed out" : `exit ${f.exitCode}`}`).join(", ")})` : ""),
      );
      if (failed.length > 0) process.exitCode = 1;
    });
}
