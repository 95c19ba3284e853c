import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { clusterSettings } from "../consensus/settings.ts";
import { parseNeighbours, withNeighbour } from "../mesh/neighbours.ts";
import { addressForKey, isPublicKeyHex } from "../mesh/yggdrasil/address.ts";
import { SharedConfig } from "../node/shared-config.ts";
import { runningAgent } from "../node/agent-lock.ts";
import { NotAvailableYet, UserError } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { parsePort, withPort } from "./options.ts";

function parseKey(value: string): string {
  if (!isPublicKeyHex(value)) throw new InvalidArgumentError(`"${value}" is not a Yggdrasil public key (64 hex characters).`);
  return value.toLowerCase();
}

export function register(program: Command): void {
  withPort(
    program
      .command("inject")
      .description("register a host as a neighbour, so the members dial out to it and accept its key")
      .argument("<host>", "hostname or IP address the new machine is reachable on"),
  )
    .option("--key <public-key>", "the machine's Yggdrasil public key (see `raptiformica identity` on it)", parseKey)
    .option("--yggdrasil-port <port>", "its Yggdrasil listen port (default: the cluster's)", parsePort)
    .action(async (host: string, opts: { port: number; key?: string; yggdrasilPort?: number }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      if (!/^[^\s/]+$/.test(host)) throw new UserError(`"${host}" is not a hostname or IP address.`);
      if (!opts.key) throw new NotAvailableYet("inject without --key (reading the key over SSH)");
      const key = opts.key;
      const shared = await SharedConfig.open(ctx.config, ctx.node, ctx.log);
      try {
        const { mapping } = await shared.snapshot();
        const port = opts.yggdrasilPort ?? clusterSettings(mapping).yggdrasilPort;
        await shared.update((m) => {
          // The original replaced any neighbour registered under the same host.
          for (const n of parseNeighbours(m)) {
            if (n.host === host && n.publicKey !== key) {
              for (const k of Object.keys(m)) if (k.startsWith(`raptiformica/meshnet/neighbours/${n.publicKey}/`)) delete m[k];
            }
          }
          const current = parseNeighbours(m).find((n) => n.publicKey === key);
          return withNeighbour(m, { ...(current ?? {}), publicKey: key, meshAddress: addressForKey(key), host, sshPort: opts.port, yggdrasilPort: port });
        });
        ctx.log.info(`registered ${host} (${addressForKey(key)}) as a neighbour${shared.isCluster ? " in the cluster" : " in the local config"}`);
      } finally {
        shared.close();
      }
      const pid = runningAgent(ctx.node.agentPid);
      if (pid !== undefined) process.kill(pid, "SIGUSR1");
    });
}
