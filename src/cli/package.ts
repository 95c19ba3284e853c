import type { Command } from "commander";
import { withComputeType, withServerType } from "./options.ts";
import { withCheckAvailable } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program.command("package").description("build a reusable image for a compute type, so spawns skip the installs");
  withCheckAvailable(withComputeType(withServerType(cmd)), "package");
}
