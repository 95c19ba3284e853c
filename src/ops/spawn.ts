import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Context } from "./context.ts";
import { UserError } from "../util/errors.ts";
import { cleanUpInstance, startInstance, type StartedInstance } from "../compute/instance.ts";
import { hostPort } from "../mesh/host.ts";
import { pinHostKey } from "../remote/known-hosts.ts";
import { sshSettings } from "../remote/settings.ts";
import { fireLocalHook } from "./local-hook.ts";
import { slaveMachine, type SlaveFlags, type SlaveProgress, type SlaveResult } from "./slave.ts";

export interface SpawnRequest {
  readonly computeType: string;
  readonly serverType: string;
  readonly flags: SlaveFlags;
}

export type SpawnProgress = (step: "start_instance" | "after_start_instance" | Parameters<SlaveProgress>[0], detail?: string) => void;

/** What the compute-type runner needs from this machine (instance dir, install dir, cache dir, log). Pure; throws nothing. */
export function computeEnv(ctx: Context) {
  return { machinesDir: ctx.paths.machines, installDir: ctx.installDir, cacheDir: ctx.paths.root, log: ctx.log };
}

/**
 * `spawn`: start an instance with the compute type, pin its host key when the type reports
 * one, fire after_start_instance, then slave it (with the instance id in its neighbour entry,
 * for `prune`). If slaving fails the instance is cleaned up again: nothing half-made is left.
 * @throws UserError when the compute type cannot start the instance, or slaving it fails (the instance is removed again then).
 */
export async function spawnMachine(ctx: Context, req: SpawnRequest, progress: SpawnProgress = () => undefined): Promise<StartedInstance & SlaveResult> {
  const { mapping } = ctx.config.snapshot();
  // Before the instance starts: the compute type installs the operator's public keys in it,
  // and when the operator has none, this is where raptiformica makes one.
  await sshSettings(ctx.paths, ctx.log);
  progress("start_instance", req.computeType);
  const inst = await startInstance(computeEnv(ctx), mapping, req.computeType, req.serverType);
  try {
    if (inst.hostKey) await pinHostKey(ctx.paths.knownHosts, inst.host, inst.port, inst.hostKey);
    progress("after_start_instance", hostPort(inst.host, inst.port));
    await fireLocalHook(ctx, "after_start_instance", { uuid: inst.uuid, host: inst.host, port: inst.port, computeType: inst.computeType, serverType: inst.serverType });
    const result = await slaveMachine(ctx, { target: { host: inst.host, port: inst.port }, serverType: req.serverType, flags: req.flags, uuid: inst.uuid }, progress);
    return { ...inst, ...result };
  } catch (e) {
    // Read before the clean-up removes the instance dir: why its sshd turned us away.
    const said = e instanceof UserError ? sshdSaid(inst.dir) : undefined;
    ctx.log.info(`spawn failed; removing instance ${inst.uuid} (${inst.host})`);
    await cleanUpInstance(computeEnv(ctx), mapping, inst);
    throw said ? new UserError(`${(e as UserError).message} The instance's sshd logged: ${said}`, (e as UserError).exitCode) : e;
  }
}

/**
 * What an instance's own sshd said about refused logins, when its compute type keeps the
 * server's log in the instance dir as `sshd.log` (netns does): its last lines that name a
 * refusal, joined, at most 3; undefined when there is no such log or line. Never throws.
 */
export function sshdSaid(instanceDir: string): string | undefined {
  const file = join(instanceDir, "sshd.log");
  try {
    if (!existsSync(file)) return undefined;
    const lines = readFileSync(file, "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /not allowed|refused|Invalid user|Authentication|account is locked|bad ownership|error/i.test(l));
    return lines.length > 0 ? lines.slice(-3).join(" | ") : undefined;
  } catch {
    return undefined;
  }
}
