import type { Command } from "commander";
import { contextFrom } from "./context.ts";
import type { Context } from "../ops/context.ts";
import { resolveType } from "../config/types.ts";

export interface TypeFlags {
  serverType?: string;
  computeType?: string;
}

/** Validates the type flags when the command runs (never while parsing), returns the chosen types. */
export async function chooseTypes(ctx: Context, flags: TypeFlags, kinds: { server?: boolean; compute?: boolean }) {
  const { mapping } = ctx.config.snapshot();
  const server = kinds.server ? await resolveType(mapping, "server", flags.serverType, ctx.probe) : undefined;
  const compute = kinds.compute ? await resolveType(mapping, "compute", flags.computeType, ctx.probe) : undefined;
  return { server, compute };
}

/**
 * `spawn` and `package` share `--check-available`: exit 0 when a server and a compute type
 * are usable here (printing which), exit 1 with the reason otherwise.
 */
export function withCheckAvailable(
  cmd: Command,
  run: (ctx: Context, types: { server: string; compute: string }, opts: Record<string, unknown>) => Promise<void>,
): Command {
  return cmd
    .option("--check-available", "only check that a server and a compute type are available here (exit 0) or not (exit 1)")
    .action(async (opts: TypeFlags & { checkAvailable?: boolean } & Record<string, unknown>, command: Command) => {
      const ctx = contextFrom(command);
      const types = await chooseTypes(ctx, opts, { server: true, compute: true });
      if (opts.checkAvailable) {
        ctx.log.info(`available: server type ${types.server}, compute type ${types.compute}`);
        return;
      }
      await run(ctx, { server: types.server as string, compute: types.compute as string }, opts);
    });
}
