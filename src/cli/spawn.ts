import type { Command } from "commander";
import { hostPort } from "../mesh/host.ts";
import { spawnMachine } from "../ops/spawn.ts";
import { UserError } from "../util/errors.ts";
import { withComputeType, withServerType, withSlaveFlags, type SlaveFlags } from "./options.ts";
import { runJobs } from "./progress.ts";
import { progressReporter } from "./slave-progress.ts";
import { withCheckAvailable } from "./types-check.ts";

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
    process.stdout.write(`${r.uuid} ${r.host} ${r.port}${r.meshAddress ? ` ${r.meshAddress}` : ""}\n`);
    ctx.log.info(`spawned instance ${r.uuid} at ${hostPort(r.host, r.port)}${r.meshAddress ? `, member ${r.meshAddress}${r.role ? ` (${r.role})` : ""}` : ""}`);
  });
}
