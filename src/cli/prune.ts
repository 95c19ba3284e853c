import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("prune")
    .description("remove instances whose compute type reports them gone, and their neighbour entries")
    .action(() => {
      throw new NotAvailableYet("prune");
    });
}
