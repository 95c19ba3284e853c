import type { Command } from "commander";
import { runAgent } from "../node/run-agent.ts";
import type { GlobalOptions } from "./context.ts";
import { VERSION } from "./version.ts";

export function register(program: Command): void {
  program
    .command("agent")
    .description("run the reconcile loop that keeps this member in the cluster (started by `mesh`)")
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await runAgent({ cacheDir: g.cacheDir, verbose: Boolean(g.verbose), version: VERSION });
    });
}
