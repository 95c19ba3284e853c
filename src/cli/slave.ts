import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { withPort, withServerType, withSlaveFlags } from "./options.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program
    .command("slave")
    .description("push raptiformica to a root-SSH host, provision it and join it to the cluster")
    .argument("<host>", "hostname or IP address of the machine");
  withSlaveFlags(withServerType(withPort(cmd))).action(async (_host: string, opts: TypeFlags, command: Command) => {
    await chooseTypes(contextFrom(command), opts, { server: true });
    throw new NotAvailableYet("slave");
  });
}
