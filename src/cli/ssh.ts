import { spawn } from "node:child_process";
import { Option, type Command } from "commander";
import { clusterIdOf } from "../consensus/cluster-id.ts";
import { checkAnswer, reportedClusterId } from "../ops/cluster/same-cluster.ts";
import { namedMembers, pickMember, targetOf } from "../ops/pick-member.ts";
import { memberTargets, onFirstMember } from "../ops/via-member.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { sessionArgv, writeSshConfig, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { remoteCommandLine } from "../remote/quote.ts";
import { UserError } from "../util/errors.ts";
import { contextFrom } from "./context.ts";

/**
 * NODE and COMMAND of `ssh [NODE] [-- COMMAND...]` from commander's operands and the raw
 * argv: commander drops the `--`, so what follows the first `--` in `raw` is the command and
 * what came before it (at most one word) the node. Without `--`, the first operand is the node
 * and the rest the command, as with ssh itself. Pure.
 * @throws UserError when more than one word comes before `--`.
 */
export function splitNodeAndCommand(operands: readonly string[], raw: readonly string[]): { node?: string; command: string[] } {
  const dash = raw.indexOf("--");
  if (dash < 0) return { ...(operands[0] !== undefined ? { node: operands[0] } : {}), command: operands.slice(1) };
  const command = raw.slice(dash + 1);
  const before = operands.slice(0, Math.max(0, operands.length - command.length));
  if (before.length > 1) {
    throw new UserError(
      `raptiformica ssh takes one NODE before \`--\`, got ${before.length} (${before.map((w) => JSON.stringify(w)).join(" ")}). ` +
        "Write `raptiformica ssh NODE -- COMMAND ARGS...`.",
    );
  }
  return { ...(before[0] !== undefined ? { node: before[0] } : {}), command };
}

interface SshFlags {
  infoOnly?: boolean;
  onlyInfo?: boolean;
  forwardAgent?: boolean;
}

export function register(program: Command): void {
  program
    .command("ssh")
    .description("open an SSH session to a member (NODE: a name, mesh address or the start of either; default: the first reachable member), or run COMMAND there")
    .argument("[node]", "the member: its name, mesh address, or a unique prefix of either")
    .argument("[command...]", "after `--`: the command to run there (each word passed as it is); exits with its status")
    .option("--info-only", "only print the ssh command line")
    .addOption(new Option("--only-info", "same as --info-only").hideHelp())
    .option("-A, --forward-agent", "forward your SSH agent (the default for an interactive login, off for a COMMAND)")
    .option("--no-forward-agent", "do not forward your SSH agent to the member")
    .action(async (_node: string | undefined, _command: string[], opts: SshFlags, cmd: Command) => {
      const { node, command } = splitNodeAndCommand(cmd.args, process.argv.slice(2));
      const ctx = contextFrom(cmd);
      const { mapping } = ctx.config.snapshot();
      let target: SshTarget;
      let settings: SshSettings;
      if (node !== undefined) {
        // Resolved before any connection: a typo fails at once, listing the members.
        target = targetOf(pickMember(namedMembers(mapping), node));
        settings = await sshSettings(ctx.paths, ctx.log);
        writeSshConfig(settings);
      } else {
        // Its identity says which cluster it is in: a member of another cluster is passed over.
        const check = checkAnswer(clusterIdOf(mapping), (out) => (out.exitCode === 0 ? reportedClusterId(out.stdout) : undefined));
        ({ target, settings } = await onFirstMember(() => sshSettings(ctx.paths, ctx.log), memberTargets(mapping), remoteCommand(mapping), ["identity", "--json"], 3, check));
      }
      // The user's agent goes along for an interactive login (so `ssh root@[mesh address]` to
      // another member works from there, as in the original), never unasked with a command.
      const forwardAgent = opts.forwardAgent ?? command.length === 0;
      const argv = sessionArgv(settings, target, command, forwardAgent);
      if (opts.infoOnly || opts.onlyInfo) {
        process.stdout.write(`ssh ${remoteCommandLine(argv)}\n`);
        return;
      }
      const child = spawn("ssh", argv, { stdio: "inherit" });
      const ended = await new Promise<number | Error>((resolve) => {
        child.on("error", resolve);
        // ssh's own status: the command's, or 255 when ssh itself failed (it said why).
        child.on("close", (code) => resolve(code ?? 255));
      });
      if (ended instanceof Error) throw new UserError(`Cannot run ssh (${ended.message}). Install OpenSSH's client (apt-get install openssh-client).`);
      process.exitCode = ended;
    });
}
