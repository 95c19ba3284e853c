import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { withComputeType, withServerType } from "./options.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program.command("package").description("build a reusable image for a compute type, so spawns skip the installs");
  withComputeType(withServerType(cmd))
    .option("--check-available", "only check that a server and a compute type are available here (exit 0) or not (exit 1)")
    .action(async (opts: TypeFlags & { checkAvailable?: boolean }, command: Command) => {
      const ctx = contextFrom(command);
      const types = await chooseTypes(ctx, opts, { server: true, compute: true });
      if (opts.checkAvailable) {
        ctx.log.info(`available: server type ${types.server}, compute type ${types.compute}`);
        return;
      }
      throw new NotAvailableYet("package");
    });
}
