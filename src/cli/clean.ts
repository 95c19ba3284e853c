import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("clean")
    .description("stop raptiformica services on this machine and remove their state")
    .option("--purge-identity", "also delete the node identity (its mesh address changes)")
    .action(() => {
      throw new NotAvailableYet("clean");
    });
}
