import type { Command } from "commander";
import { withComputeType, withServerType, withSlaveFlags } from "./options.ts";
import { withCheckAvailable } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program.command("spawn").description("start a new machine with a compute type, then slave it into the cluster");
  withCheckAvailable(withSlaveFlags(withComputeType(withServerType(cmd))), "spawn");
}
