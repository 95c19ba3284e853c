import { InvalidArgumentError, type Command } from "commander";
import { describeHostProblem, parseHost } from "../mesh/host.ts";

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`"${value}" is not a TCP port (1-65535).`);
  }
  return n;
}

/**
 * A commander parser for a host argument or flag (`slave HOST`, `--advertise-host H`…): the
 * value goes through `parseHost`, the check the cluster applies when it dials the host, and
 * comes out in its stored form (IPv6 bare, `[v6]` accepted). `portHint` says where the port
 * goes instead, for `host:port` input.
 */
export function hostParser(portHint: string): (value: string) => string {
  return (value) => {
    const parsed = parseHost(value);
    if (!parsed.ok) throw new InvalidArgumentError(`${describeHostProblem(value, parsed.error, portHint)}.`);
    return parsed.value.value;
  };
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number.`);
  return n;
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
