import type { Command } from "commander";
import type { IdentityAnswer } from "../ops/cluster/wire.ts";
import { ownClusterId } from "../ops/cluster/member.ts";
import { nodeIdentity } from "../ops/node.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("identity")
    .description("print this machine's mesh identity (public key, mesh address), creating it once")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { identity, info } = await nodeIdentity(ctx.paths);
      const clusterId = ownClusterId(ctx);
      const out: IdentityAnswer = { publicKey: identity.publicKey, meshAddress: identity.address, yggdrasilMajor: info.major, yggdrasilVersion: info.version, ...(clusterId ? { clusterId } : {}) };
      if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else process.stdout.write(`public key:   ${out.publicKey}\nmesh address: ${out.meshAddress}\nyggdrasil:    ${info.version}\n`);
    });
}
