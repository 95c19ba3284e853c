import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { childEnv } from "../config/child-env.ts";
import type { FlatMapping } from "../config/flatten.ts";
import { KEY_ROOT } from "../config/flatten.ts";
import { run, runShell, type Outcome } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { describeHostProblem, parseHost } from "../mesh/host.ts";
import type { Logger } from "../util/log.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/**
 * The compute-type contract of the original, run in a per-instance dir
 * `<cache>/var/machines/<compute>/<server>/<uuid>`: start_instance, get_hostname, get_port (and
 * our optional get_host_key, whose key `spawn` pins), detect_stale_instance (exit 0 = alive),
 * clean_up_instance_command. All are shell by contract, run with the install dir in
 * RAPTIFORMICA_HOME and raptiformica on the PATH.
 */
export interface ComputeEnv {
  readonly machinesDir: string;
  readonly installDir: string;
  readonly cacheDir: string;
  readonly log: Logger;
}

export interface Instance {
  readonly computeType: string;
  readonly serverType: string;
  readonly uuid: string;
  readonly dir: string;
}

export interface StartedInstance extends Instance {
  readonly host: string;
  readonly port: number;
  readonly hostKey?: string;
}

type ComputeKey = "source" | "start_instance" | "get_hostname" | "get_port" | "get_host_key" | "detect_stale_instance" | "clean_up_instance_command" | "package";

export function computeCommand(mapping: FlatMapping, compute: string, server: string, key: ComputeKey): string | undefined {
  return mapping[`${KEY_ROOT}/compute/${compute}/${server}/${key}`] || undefined;
}

function env(e: ComputeEnv): NodeJS.ProcessEnv {
  return childEnv(e);
}

function lastLines(o: Outcome, n = 5): string {
  return (o.stderr.trim() || o.stdout.trim()).split("\n").slice(-n).join(" | ") || "no output";
}

async function step(e: ComputeEnv, inst: Instance, key: ComputeKey, command: string, timeoutMs: number, live = false): Promise<string> {
  const out = await runShell(command, { cwd: inst.dir, env: env(e), timeoutMs, live });
  if (out.exitCode !== 0) {
    throw new UserError(
      `Compute type ${inst.computeType} (server type ${inst.serverType}): ${key} failed in ${inst.dir} ` +
        `(exit ${out.exitCode}${out.timedOut ? ", timed out" : ""}): ${live ? "see its output above" : lastLines(out)}`,
    );
  }
  return out.stdout.trim();
}

function required(mapping: FlatMapping, compute: string, server: string, key: ComputeKey): string {
  const cmd = computeCommand(mapping, compute, server, key);
  if (!cmd) {
    throw new UserError(`Compute type ${compute} has no ${key} for server type ${server} (config key ${KEY_ROOT}/compute/${compute}/${server}/${key}).`);
  }
  return cmd;
}

/** Starts an instance; on failure its clean-up runs and its dir is removed, so nothing is left behind. */
export async function startInstance(e: ComputeEnv, mapping: FlatMapping, compute: string, server: string): Promise<StartedInstance> {
  const start = required(mapping, compute, server, "start_instance");
  const getHost = required(mapping, compute, server, "get_hostname");
  const getPort = required(mapping, compute, server, "get_port");
  const uuid = randomUUID().replace(/-/g, "");
  const inst: Instance = { computeType: compute, serverType: server, uuid, dir: join(e.machinesDir, compute, server, uuid) };
  makePrivateDir(join(e.machinesDir, compute, server));
  const source = computeCommand(mapping, compute, server, "source");
  try {
    if (source) {
      const cloned = await run("git", ["clone", "-q", "--", source, inst.dir], { timeoutMs: 600_000 });
      if (cloned.exitCode !== 0) throw new UserError(`Cannot clone ${source} for compute type ${compute}: ${lastLines(cloned)}`);
    } else {
      mkdirSync(inst.dir, { mode: 0o700 });
    }
    await step(e, inst, "start_instance", start, 1_800_000, e.log.verbose);
    const printed = await step(e, inst, "get_hostname", getHost, 120_000);
    const portText = await step(e, inst, "get_port", getPort, 120_000);
    const port = Number(portText);
    // The host becomes the new member's neighbour entry: checked with the rule the cluster dials by.
    const parsedHost = parseHost(printed);
    if (!parsedHost.ok) throw new UserError(`Compute type ${compute}: get_hostname printed something unusable: ${describeHostProblem(printed, parsedHost.error, "from get_port")}.`);
    const host = parsedHost.value.value;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`Compute type ${compute}: get_port printed ${JSON.stringify(portText)}, not a TCP port.`);
    const keyCmd = computeCommand(mapping, compute, server, "get_host_key");
    const hostKey = keyCmd ? await step(e, inst, "get_host_key", keyCmd, 120_000) : undefined;
    return { ...inst, host, port, ...(hostKey ? { hostKey } : {}) };
  } catch (err) {
    await cleanUpInstance(e, mapping, inst).catch(() => undefined);
    throw err;
  }
}

/** Instances under the machines dir, for the given compute and server types. */
export function listInstances(e: ComputeEnv, compute: string, server: string): Instance[] {
  return instancesIn(e.machinesDir, compute, server);
}

function instancesIn(machinesDir: string, compute: string, server: string): Instance[] {
  const dir = join(machinesDir, compute, server);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^[0-9a-f]{32}$/.test(d.name))
    .map((d) => ({ computeType: compute, serverType: server, uuid: d.name, dir: join(dir, d.name) }));
}

/**
 * Every instance dir under the machines dir (`<compute>/<server>/<32 hex>`), whatever types the
 * config knows now: what `clean` must not pull from under a running instance.
 */
export function allInstances(machinesDir: string): Instance[] {
  const dirs = (path: string) => {
    try {
      return readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return [];
    }
  };
  return dirs(machinesDir).flatMap((compute) => dirs(join(machinesDir, compute)).flatMap((server) => instancesIn(machinesDir, compute, server)));
}

/** Alive per detect_stale_instance (exit 0). A type without the command counts its instances alive. */
export async function isAlive(e: ComputeEnv, mapping: FlatMapping, inst: Instance): Promise<boolean> {
  const cmd = computeCommand(mapping, inst.computeType, inst.serverType, "detect_stale_instance");
  if (!cmd) return true;
  const out = await runShell(cmd, { cwd: inst.dir, env: env(e), timeoutMs: 120_000 });
  return out.exitCode === 0;
}

/** Runs the clean-up command (a failure is logged) and removes the instance dir. */
export async function cleanUpInstance(e: ComputeEnv, mapping: FlatMapping, inst: Instance): Promise<void> {
  const cmd = computeCommand(mapping, inst.computeType, inst.serverType, "clean_up_instance_command");
  if (cmd && existsSync(inst.dir)) {
    const out = await runShell(cmd, { cwd: inst.dir, env: env(e), timeoutMs: 300_000 });
    if (out.exitCode !== 0) e.log.warn(`cleaning up instance ${inst.uuid} (${inst.computeType}) failed: ${lastLines(out)}`);
  }
  rmSync(inst.dir, { recursive: true, force: true });
}
