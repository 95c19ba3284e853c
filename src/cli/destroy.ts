import type { Command } from "commander";
import { destroy } from "../ops/prune.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("destroy")
    .description("tear down every instance started from this machine and forget the cluster")
    .option("--purge-artifacts", "also delete the artifact cache")
    .option("--purge-modules", "also delete the installed modules")
    .action(async (opts: { purgeArtifacts?: boolean; purgeModules?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await destroy(ctx, opts);
      ctx.log.info(`destroyed ${r.removed.length} instance(s); this machine's copy of the cluster config is gone`);
    });
}
