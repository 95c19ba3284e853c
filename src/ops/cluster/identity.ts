import { remoteCommand, sshSettings } from "../../remote/settings.ts";
import type { SshTarget } from "../../remote/ssh.ts";
import { UserError } from "../../util/errors.ts";
import type { Context } from "../context.ts";
import { MemberCli } from "./member-cli.ts";
import type { IdentityAnswer } from "./wire.ts";

/**
 * The mesh identity of the machine at `target`, read over SSH from raptiformica there
 * (`identity --json`). `hint` (one sentence) is added to its error, e.g. how to pass the key instead.
 * @throws UserError naming the machine when it cannot be reached or its identity cannot be read.
 */
export async function hostIdentity(ctx: Context, target: SshTarget, hint = ""): Promise<IdentityAnswer> {
  const cli = MemberCli.overSsh(await sshSettings(ctx.paths, ctx.log), target, remoteCommand(ctx.config.snapshot().mapping));
  try {
    return await cli.identity();
  } catch (e) {
    if (e instanceof UserError && hint) throw new UserError(`${e.message} ${hint}`, e.exitCode);
    throw e;
  }
}
