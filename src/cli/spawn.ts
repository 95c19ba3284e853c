import type { Command } from "commander";
import { hostPort } from "../mesh/host.ts";
import { spawnMachine } from "../ops/spawn.ts";
import type { SlaveFlags } from "../ops/slave.ts";
import { UserError } from "../util/errors.ts";
import { withComputeType, withServerType, withSlaveFlags } from "./options.ts";
import { runJobs } from "./progress.ts";
import { progressReporter } from "./slave-progress.ts";
import { withCheckAvailable } from "./types-check.ts";
import { printable } from "../util/printable.ts";

export function register(program: Command): void {
  const cmd = program.command("spawn").description("start a new machine with a compute type, then slave it into the cluster");
  withCheckAvailable(withSlaveFlags(withComputeType(withServerType(cmd))), async (ctx, types, opts) => {
    const flags = opts as unknown as SlaveFlags;
    const [result] = await runJobs(
      [
        {
          title: `spawn (${types.compute}, ${types.server})`,
          run: (report) => spawnMachine(ctx, { computeType: types.compute, serverType: types.server, flags }, progressReporter(report)),
        },
      ],
      { concurrent: 1, verbose: ctx.log.verbose },
    );
    if (!result?.ok) throw new UserError(result?.error ?? "spawn did not run");
    const r = result.value;
    // The host comes from the compute type's get_hostname, the address and role from the machine.
    const [address, role] = [r.meshAddress, r.role].map((v) => (v === undefined ? undefined : printable(String(v))));
    process.stdout.write(`${r.uuid} ${printable(r.host)} ${r.port}${address ? ` ${address}` : ""}\n`);
    ctx.log.info(`spawned instance ${r.uuid} at ${printable(hostPort(r.host, r.port))}${address ? `, member ${address}${role ? ` (${role})` : ""}` : ""}`);
  });
}
