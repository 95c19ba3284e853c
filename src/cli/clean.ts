import type { Command } from "commander";
import { cleanNode } from "../ops/clean.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("clean")
    .description("stop raptiformica services on this machine and remove their state (refused while instances started from here exist)")
    .option("--purge-identity", "also delete the identities: the node's mesh key (its address changes), ssh/ (raptiformica's SSH key) and known_hosts")
    .action(async (opts: { purgeIdentity?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await cleanNode(ctx.paths, ctx.node, ctx.config, ctx.log, Boolean(opts.purgeIdentity));
      ctx.log.info(`cleaned ${ctx.paths.root}${r.kept.length > 0 ? ` (kept the identities: ${r.kept.join(", ")}; --purge-identity deletes them too)` : ""}`);
      const { foreign, wrongType } = r.left;
      if (foreign.length > 0) ctx.log.info(`left ${foreign.length} entr${foreign.length === 1 ? "y" : "ies"} raptiformica did not create in ${ctx.paths.root}: ${foreign.join(", ")}`);
      if (wrongType.length > 0) ctx.log.warn(`left ${wrongType.length} entr${wrongType.length === 1 ? "y" : "ies"} named like raptiformica's but not of its making in ${ctx.paths.root}: ${wrongType.join("; ")}`);
    });
}
