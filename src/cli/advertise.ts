import type { Command } from "commander";
import { writeAdvertised } from "../node/advertised.ts";
import { contextFrom } from "./context.ts";
import { hostParser, withPort } from "./options.ts";

export function register(program: Command): void {
  withPort(
    program
      .command("advertise")
      .description("record the address other machines reach this one on (used when it registers as a neighbour)")
      .argument("<host>", "hostname or IP address this machine is reachable on (IPv6 bare or in brackets)", hostParser("with --port")),
    "SSH port this machine is reachable on",
  ).action(async (host: string, opts: { port: number }, cmd: Command) => {
    const ctx = contextFrom(cmd);
    await writeAdvertised(ctx.paths.lastAdvertised, { host, port: opts.port });
    ctx.log.debug(`wrote ${ctx.paths.lastAdvertised}`);
  });
}
