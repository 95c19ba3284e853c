import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { hostIdentity } from "../ops/cluster/identity.ts";
import { LocalCluster } from "../ops/cluster/local.ts";
import { hostPort } from "../mesh/host.ts";
import { addressForKey, isPublicKeyHex } from "../mesh/yggdrasil/address.ts";
import { contextFrom } from "./context.ts";
import { hostParser, parsePort, withPort } from "./options.ts";

function parseKey(value: string): string {
  if (!isPublicKeyHex(value)) throw new InvalidArgumentError(`"${value}" is not a Yggdrasil public key (64 hex characters).`);
  return value.toLowerCase();
}

export function register(program: Command): void {
  withPort(
    program
      .command("inject")
      .description("register a host as a neighbour, so the members dial out to it and accept its key")
      .argument("<host>", "hostname or IP address the new machine is reachable on (IPv6 bare or in brackets)", hostParser("with --port")),
  )
    .option("--key <public-key>", "the machine's Yggdrasil public key (default: read from it over SSH)", parseKey)
    .option("--yggdrasil-port <port>", "its Yggdrasil listen port (default: the cluster's)", parsePort)
    .action(async (host: string, opts: { port: number; key?: string; yggdrasilPort?: number }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const key = opts.key ?? (await hostIdentity(ctx, { host, port: opts.port }, "Or pass its key with --key.")).publicKey.toLowerCase();
      // Registered here: in the KV on a member, else in this machine's own config.
      const r = await new LocalCluster(ctx).inject({ host, sshPort: opts.port, publicKey: key, ...(opts.yggdrasilPort ? { yggdrasilPort: opts.yggdrasilPort } : {}) });
      ctx.log.info(`registered ${hostPort(host, opts.port)} (${addressForKey(key)}) as a neighbour${r.inCluster ? " in the cluster" : " in the local config"}`);
    });
}
