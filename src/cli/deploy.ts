import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { parsePositiveInt, withServerType, withSlaveFlags } from "./options.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program
    .command("deploy")
    .description("(re)create a whole network from an inventory of hosts")
    .argument("<inventory>", 'JSON file: [{"dst": "1.2.3.4", "port": 22, "via": "<another dst>"}, …]');
  withSlaveFlags(withServerType(cmd))
    .option("--modules <module...>", "modules to install before deploying")
    .option("--concurrent <n>", "hosts to work on at once", parsePositiveInt, 5)
    .action(async (_inventory: string, opts: TypeFlags, command: Command) => {
      await chooseTypes(contextFrom(command), opts, { server: true });
      throw new NotAvailableYet("deploy");
    });
}
