import { spawn } from "node:child_process";
import { Option, type Command } from "commander";
import { clusterIdOf } from "../consensus/cluster-id.ts";
import { checkAnswer, reportedClusterId } from "../ops/cluster/same-cluster.ts";
import { memberTargets, onFirstMember } from "../ops/via-member.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { sshOptions } from "../remote/ssh.ts";
import { remoteCommandLine } from "../remote/quote.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("ssh")
    .description("open an SSH session to the first reachable member")
    .option("--info-only", "only print the ssh command line")
    .addOption(new Option("--only-info", "same as --info-only").hideHelp())
    .action(async (opts: { infoOnly?: boolean; onlyInfo?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { mapping } = ctx.config.snapshot();
      // Its identity says which cluster it is in: a member of another cluster is passed over.
      const check = checkAnswer(clusterIdOf(mapping), (out) => (out.exitCode === 0 ? reportedClusterId(out.stdout) : undefined));
      const { target, settings } = await onFirstMember(() => sshSettings(ctx.paths, ctx.log), memberTargets(mapping), remoteCommand(mapping), ["identity", "--json"], 3, check);
      const argv = [...sshOptions(settings, target), `${target.user ?? "root"}@${target.host}`];
      if (opts.infoOnly || opts.onlyInfo) {
        process.stdout.write(`ssh ${remoteCommandLine(argv)}\n`);
        return;
      }
      const child = spawn("ssh", ["-t", ...argv], { stdio: "inherit" });
      process.exitCode = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 255)));
    });
}
