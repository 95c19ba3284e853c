import type { Command } from "commander";
import { prune } from "../ops/prune.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("prune")
    .description("remove instances whose compute type reports them gone, and their neighbour entries")
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await prune(ctx);
      for (const w of r.warnings) ctx.log.warn(w);
      ctx.log.info(`pruned ${r.removed.length} instance(s), ${r.neighbours.length} neighbour entr${r.neighbours.length === 1 ? "y" : "ies"}; ${r.kept.length} instance(s) alive`);
      if (r.warnings.length > 0) process.exitCode = 1;
    });
}
