import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("agent")
    .description("run the reconcile loop that keeps this member in the cluster")
    .action(() => {
      throw new NotAvailableYet("agent");
    });
}
