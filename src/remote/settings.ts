import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import { DEFAULT_CACHE_DIR, type CachePaths } from "../config/paths.ts";
import { UserError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { ensureIdentity, type SshSettings } from "./ssh.ts";

export const REMOTE_KEYS = {
  /** The raptiformica launcher on members (where `slave` installs it). */
  command: `${KEY_ROOT}/remote/command`,
} as const;

/**
 * Where `slave` installs raptiformica on a member: always here, whatever the config says, so
 * no setting can make a push (which replaces what it copies) land on another directory.
 */
export const REMOTE_INSTALL_DIR = "/usr/etc/raptiformica";

export const DEFAULT_REMOTE_COMMAND = `${REMOTE_INSTALL_DIR}/bin/raptiformica`;

/**
 * raptiformica's cache dir on a member, relative to root's home: the default cache dir, as in
 * the original (the launcher there runs with it, so `slave` writes its config files there).
 */
export const REMOTE_CACHE_DIR = DEFAULT_CACHE_DIR;

/**
 * Why `raptiformica/remote/command` in `mapping` cannot be used, or undefined when it can (or
 * is unset): the launcher run on members must be an absolute path of plain characters
 * (letters, digits, `. _ + - /`, no `..`). One sentence naming the key and the fix.
 */
export function remoteCommandProblem(mapping: FlatMapping): string | undefined {
  const value = mapping[REMOTE_KEYS.command];
  if (!value) return undefined;
  if (/^\/[A-Za-z0-9._+/-]+$/.test(value) && !value.split("/").includes("..")) return undefined;
  return (
    `${REMOTE_KEYS.command} is ${JSON.stringify(value)}: it must be the absolute path of raptiformica's launcher on members (letters, digits, . _ + - /, no ".."), e.g. ${DEFAULT_REMOTE_COMMAND}. ` +
    `Fix it with \`raptiformica config set ${REMOTE_KEYS.command} ${DEFAULT_REMOTE_COMMAND}\` (or delete the key).`
  );
}

/**
 * The launcher run on members (`raptiformica/remote/command`, default
 * {@link DEFAULT_REMOTE_COMMAND}). Throws a UserError ({@link remoteCommandProblem}) when it
 * is not a plain absolute path. It is a code key: never learnt from a member (config/trust.ts).
 */
export function remoteCommand(mapping: FlatMapping): string {
  const problem = remoteCommandProblem(mapping);
  if (problem) throw new UserError(problem);
  return mapping[REMOTE_KEYS.command] || DEFAULT_REMOTE_COMMAND;
}

export async function sshSettings(paths: CachePaths, log: Logger): Promise<SshSettings> {
  const dir = paths.ssh;
  return { knownHosts: paths.knownHosts, stateDir: dir, identities: await ensureIdentity(dir, log) };
}
