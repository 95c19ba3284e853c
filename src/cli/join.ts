import type { Command } from "commander";
import { joinCluster } from "../ops/join.ts";
import { UserError } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import { hostParser, parsePort, withPort, withServerType } from "./options.ts";
import { runJobs } from "./progress.ts";
import { chooseTypes, type TypeFlags } from "./types-check.ts";

export function register(program: Command): void {
  const cmd = program
    .command("join")
    .description("make this machine join an existing cluster through one of its members")
    .argument("<host>", "a cluster member reachable over SSH", hostParser("with --port"));
  withServerType(withPort(cmd, "SSH port of the member"))
    .option("--local-ssh-port <port>", "port of this machine's sshd, which the member reaches through the tunnel", parsePort, 22)
    .option("--advertise-host <host>", "address the cluster reaches this machine on (default: the one the member sees it connect from)", hostParser("with --local-ssh-port"))
    .action(async (host: string, opts: TypeFlags & { port: number; localSshPort: number; advertiseHost?: string }, command: Command) => {
      const ctx = contextFrom(command);
      const { server } = await chooseTypes(ctx, opts, { server: true });
      const [result] = await runJobs(
        [
          {
            title: `join through ${host}`,
            run: (report) =>
              joinCluster(
                ctx,
                {
                  member: { host, port: opts.port },
                  serverType: server as string,
                  localSshPort: opts.localSshPort,
                  ...(opts.advertiseHost ? { advertiseHost: opts.advertiseHost } : {}),
                },
                report,
              ),
          },
        ],
        { concurrent: 1, verbose: ctx.log.verbose },
      );
      if (!result?.ok) throw new UserError(result?.error ?? "join did not run");
      ctx.log.info(`joined: this machine is a member, registered as ${result.value.host}`);
    });
}
