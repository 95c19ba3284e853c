import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";
import { withPort } from "./options.ts";

export function register(program: Command): void {
  withPort(
    program
      .command("inject")
      .description("add a host to this member's mesh peers, so it dials out to it")
      .argument("<host>", "hostname or IP address of the new machine"),
  ).action(() => {
    throw new NotAvailableYet("inject");
  });
}
