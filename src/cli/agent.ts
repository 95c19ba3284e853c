import type { Command } from "commander";
import { startMapService } from "../ops/map/service.ts";
import { startJobRunner } from "../ops/job/runner.ts";
import { runAgent } from "../node/run-agent.ts";
import type { GlobalOptions } from "./context.ts";
import { VERSION } from "./version.ts";

/**
 * A member's agent process: the reconcile loop (node/run-agent.ts) and, beside it, the mesh
 * map's server (ops/map/service.ts) and the job runner (ops/job/runner.ts). How `mesh`, the keeper and systemd start it (main.ts, no
 * CLI loaded) and what `raptiformica agent` runs.
 */
export async function runMemberAgent(o: { cacheDir?: string; verbose: boolean }): Promise<void> {
  await runAgent({ ...o, version: VERSION, companions: [(p) => startMapService(p), (p) => startJobRunner(p)] });
}

export function register(program: Command): void {
  program
    .command("agent")
    .description("run the reconcile loop that keeps this member in the cluster (started by `mesh`), and serve the mesh map")
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await runMemberAgent({ cacheDir: g.cacheDir, verbose: Boolean(g.verbose) });
    });
}
