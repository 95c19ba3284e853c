import type { Command } from "commander";
import { destroy } from "../ops/prune.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("destroy")
    .description("tear down every instance started from this machine and forget the cluster (keeps ssh/ and known_hosts)")
    .option("--purge-artifacts", "also delete the artifact cache")
    .option("--purge-modules", "also delete the installed modules")
    .action(async (opts: { purgeArtifacts?: boolean; purgeModules?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await destroy(ctx, opts);
      for (const w of r.warnings) ctx.log.warn(w);
      if (r.unknown.length > 0) {
        ctx.log.warn(
          `${r.unknown.length} instance dir(s) remain because no compute type in the config knows them: ${r.unknown.map((i) => `${i.computeType}/${i.serverType}/${i.uuid}`).join(", ")} ` +
            `(in ${ctx.paths.machines}). Install the module of that compute type again and rerun destroy, or tear them down by hand and remove their dirs.`,
        );
      }
      if (r.wrongType.length > 0) ctx.log.warn(`left entries named like raptiformica's but not of its making in ${ctx.paths.root}: ${r.wrongType.join("; ")}`);
      ctx.log.info(`destroyed ${r.removed.length} instance(s); this machine's copy of the cluster config is gone (ssh/ and known_hosts stay)`);
    });
}
