import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { NotAvailableYet, UserError } from "../util/errors.ts";
import { parseInventory } from "../ops/inventory.ts";
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
    .action(async (inventory: string, opts: TypeFlags, command: Command) => {
      let text: string;
      try {
        text = readFileSync(inventory, "utf8");
      } catch (e) {
        throw new UserError(`Cannot read the inventory ${inventory}: ${(e as Error).message}.`);
      }
      const hosts = parseInventory(text, inventory);
      if (!hosts.ok) throw new UserError(hosts.error);
      await chooseTypes(contextFrom(command), opts, { server: true });
      throw new NotAvailableYet("deploy");
    });
}
