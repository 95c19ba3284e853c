import type { Context } from "./context.ts";
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
