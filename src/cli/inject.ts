import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { registerNeighbour } from "../ops/inject.ts";
import { hostPort } from "../mesh/host.ts";
import { addressForKey, isPublicKeyHex } from "../mesh/yggdrasil/address.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { describeTarget, sshRun } from "../remote/ssh.ts";
import { UserError } from "../util/errors.ts";
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
      const key = opts.key ?? (await keyOverSsh(ctx, host, opts.port));
      const r = await registerNeighbour(ctx, { host, sshPort: opts.port, publicKey: key, ...(opts.yggdrasilPort ? { yggdrasilPort: opts.yggdrasilPort } : {}) });
      ctx.log.info(`registered ${hostPort(host, opts.port)} (${addressForKey(key)}) as a neighbour${r.inCluster ? " in the cluster" : " in the local config"}`);
    });
}

async function keyOverSsh(ctx: ReturnType<typeof contextFrom>, host: string, port: number): Promise<string> {
  const target = { host, port };
  const out = await sshRun(await sshSettings(ctx.paths, ctx.log), target, [remoteCommand(ctx.config.snapshot().mapping), "identity", "--json"], { timeoutMs: 60_000 });
  let key: unknown;
  try {
    key = (JSON.parse(out.stdout) as { publicKey?: unknown }).publicKey;
  } catch {
    key = undefined;
  }
  if (out.exitCode !== 0 || typeof key !== "string" || !isPublicKeyHex(key)) {
    throw new UserError(
      `Cannot read the Yggdrasil key of ${describeTarget(target)} (\`raptiformica identity --json\` there exited ${out.exitCode}: ${out.stderr.trim().split("\n").pop() ?? ""}). ` +
        "Is raptiformica installed there (`raptiformica slave` does that)? Or pass its key with --key.",
    );
  }
  return key.toLowerCase();
}
