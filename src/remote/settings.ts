import { createHash } from "node:crypto";
import { mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/**
 * ControlMaster sockets go to a short private directory (`/tmp/raptiformica-<uid>/<hash of the
 * cache dir>`): under a deep cache dir the socket path would exceed the unix socket limit.
 * A directory there that is not ours and private is not used: then no connection reuse.
 */
export function controlDirFor(cacheRoot: string): string | undefined {
  const uid = process.getuid?.() ?? 0;
  const base = join(tmpdir(), `raptiformica-${uid}`);
  try {
    mkdirSync(base, { recursive: true, mode: 0o700 });
    const st = statSync(base);
    if (st.uid !== uid || (st.mode & 0o077) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return join(base, createHash("sha256").update(cacheRoot).digest("hex").slice(0, 10));
}

export async function sshSettings(paths: CachePaths, log: Logger): Promise<SshSettings> {
  const dir = join(paths.root, "ssh");
  const control = controlDirFor(paths.root);
  return {
    knownHosts: paths.knownHosts,
    stateDir: dir,
    controlDir: control ?? join(dir, "cm"),
    ...(control ? {} : { noControlMaster: true }),
    identities: await ensureIdentity(dir, log),
  };
}
