import type { Command } from "commander";
import { slaveMachine, type SlaveFlags } from "../ops/slave.ts";
import { UserError } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { hostParser, parsePort, withPort, withServerType, withSlaveFlags } from "./options.ts";
import { runJobs } from "./progress.ts";
import { progressReporter } from "./slave-progress.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";
import { printable } from "../util/printable.ts";

export function register(program: Command): void {
  const cmd = program
    .command("slave")
    .description("push raptiformica to a root-SSH host, provision it and join it to the cluster")
    .argument("<host>", "hostname or IP address of the machine (IPv6 bare or in brackets)", hostParser("with --port"));
  withSlaveFlags(withServerType(withPort(cmd)))
    .option("--advertise-host <host>", "address the cluster reaches the machine on, when not HOST (e.g. HOST is a tunnel)", hostParser("with --advertise-port"))
    .option("--advertise-port <port>", "SSH port the cluster reaches the machine on (with --advertise-host; default 22)", parsePort)
    .action(async (host: string, opts: TypeFlags & SlaveFlags & { port: number; advertiseHost?: string; advertisePort?: number }, command: Command) => {
    const ctx = contextFrom(command);
    const { server } = await chooseTypes(ctx, opts, { server: true });
    const [result] = await runJobs(
      [
        {
          title: `slave ${host}`,
          run: (report) =>
            slaveMachine(
              ctx,
              {
                target: { host, port: opts.port },
                serverType: server as string,
                flags: opts,
                ...(opts.advertiseHost ? { advertise: { host: opts.advertiseHost, port: opts.advertisePort ?? 22 } } : {}),
              },
              progressReporter(report),
            ),
        },
      ],
      { concurrent: 1, verbose: ctx.log.verbose },
    );
    if (!result?.ok) throw new UserError(result?.error ?? "slave did not run");
    const r = result.value;
    // Address and role are what the machine answered: shown escaped.
    ctx.log.info(r.meshAddress ? `${host} is a member: ${printable(r.meshAddress)}${r.role ? ` (${printable(r.role)})` : ""}` : `${host} is provisioned (not assimilated)`);
  });
}
