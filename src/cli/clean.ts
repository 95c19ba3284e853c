import type { Command } from "commander";
import { cleanNode } from "../ops/clean.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("clean")
    .description("stop raptiformica services on this machine and remove their state")
    .option("--purge-identity", "also delete the node identity (its mesh address changes)")
    .action(async (opts: { purgeIdentity?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await cleanNode(ctx.paths, ctx.node, ctx.config, ctx.log, Boolean(opts.purgeIdentity));
      ctx.log.info(`cleaned ${ctx.paths.root}${r.keptIdentity ? " (kept the node identity)" : ""}`);
      if (r.leftAlone.length > 0) ctx.log.info(`left ${r.leftAlone.length} entr${r.leftAlone.length === 1 ? "y" : "ies"} raptiformica did not create in ${ctx.paths.root}: ${r.leftAlone.join(", ")}`);
    });
}
