import { InvalidArgumentError, type Command } from "commander";

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`"${value}" is not a TCP port (1-65535).`);
  }
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number.`);
  return n;
}

export interface SlaveFlags {
  provision: boolean;
  assimilate: boolean;
  afterAssimilate: boolean;
  afterMesh: boolean;
}

/** The four flags `spawn`, `slave` and `deploy` share with the original. */
export function withSlaveFlags(cmd: Command): Command {
  return cmd
    .option("--no-provision", "do not run the server type's provisioners")
    .option("--no-assimilate", "do not join the machine to the cluster (provision only)")
    .option("--no-after-assimilate", "do not fire the after_assimilate hook")
    .option("--no-after-mesh", "do not fire the after_mesh hook on the machine");
}

export function withServerType(cmd: Command): Command {
  return cmd.option("--server-type <type>", "server type to provision (default: first available, alphabetically)");
}

export function withComputeType(cmd: Command): Command {
  return cmd.option("--compute-type <type>", "compute type to start the machine with (default: first available, alphabetically)");
}

export function withPort(cmd: Command, what = "SSH port of the host"): Command {
  return cmd.option("-p, --port <port>", what, parsePort, 22);
}
