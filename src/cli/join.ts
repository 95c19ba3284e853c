import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { withPort, withServerType } from "./options.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program
    .command("join")
    .description("make this machine join an existing cluster through one of its members")
    .argument("<host>", "a cluster member reachable over SSH");
  withServerType(withPort(cmd, "SSH port of the member")).action(async (_host: string, opts: TypeFlags, command: Command) => {
    await chooseTypes(contextFrom(command), opts, { server: true });
    throw new NotAvailableYet("join");
  });
}
