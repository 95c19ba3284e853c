import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("mesh")
    .description("configure and start the mesh and consensus on this machine, then make sure the agent runs")
    .option("--no-after-mesh", "do not fire the after_mesh hook")
    .action(() => {
      throw new NotAvailableYet("mesh");
    });
}
