import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("destroy")
    .description("tear down every instance started from this machine and forget the cluster")
    .option("--purge-artifacts", "also delete the artifact cache")
    .option("--purge-modules", "also delete the installed modules")
    .action(() => {
      throw new NotAvailableYet("destroy");
    });
}
