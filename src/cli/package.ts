import type { Command } from "commander";
import { computeCommand } from "../compute/instance.ts";
import { childEnv } from "../config/child-env.ts";
import { KEY_ROOT } from "../config/flatten.ts";
import { runShell } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { withComputeType, withServerType } from "./options.ts";
import { withCheckAvailable } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program.command("package").description("build a reusable image for a compute type, so spawns skip the installs");
  withCheckAvailable(withComputeType(withServerType(cmd)), async (ctx, types) => {
    const { mapping } = ctx.config.snapshot();
    const command = computeCommand(mapping, types.compute, types.server, "package");
    if (!command) {
      throw new UserError(`Compute type ${types.compute} cannot package server type ${types.server}: it has no ${KEY_ROOT}/compute/${types.compute}/${types.server}/package command.`);
    }
    // The package command is shell by contract; it runs in the install dir with live output.
    const out = await runShell(command, {
      cwd: ctx.installDir,
      env: childEnv({ installDir: ctx.installDir, cacheDir: ctx.paths.root }),
      timeoutMs: 3_600_000,
      live: true,
    });
    if (out.exitCode !== 0) throw new UserError(`Packaging ${types.compute}/${types.server} failed (exit ${out.exitCode}${out.timedOut ? ", timed out" : ""}); see the output above.`);
  });
}
