import { Option, type Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("ssh")
    .description("open an SSH session to the first reachable member")
    .option("--info-only", "only print the ssh command line")
    .addOption(new Option("--only-info", "same as --info-only").hideHelp())
    .action(() => {
      throw new NotAvailableYet("ssh");
    });
}
