import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import type { CachePaths } from "../config/paths.ts";
import type { Logger } from "../util/log.ts";
import { ensureIdentity, type SshSettings } from "./ssh.ts";

export const REMOTE_KEYS = {
  /** The raptiformica launcher on members (where `slave` installs it). */
  command: `${KEY_ROOT}/remote/command`,
} as const;

export const DEFAULT_REMOTE_COMMAND = "/usr/etc/raptiformica/bin/raptiformica";

export function remoteCommand(mapping: FlatMapping): string {
  return mapping[REMOTE_KEYS.command] || DEFAULT_REMOTE_COMMAND;
}

export async function sshSettings(paths: CachePaths, log: Logger): Promise<SshSettings> {
  const dir = paths.ssh;
  return { knownHosts: paths.knownHosts, stateDir: dir, identities: await ensureIdentity(dir, log) };
}
