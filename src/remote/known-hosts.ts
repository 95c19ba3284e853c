import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";
import writeFileAtomic from "write-file-atomic";
import { UserError } from "../util/errors.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/** How OpenSSH names a host in known_hosts: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** `type base64` from a public key line (`type base64 [comment]`), or undefined when it is not one. */
export function parseHostKey(line: string): string | undefined {
  const m = /^(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa)\s+([A-Za-z0-9+/=]+)(?:\s|$)/.exec(line.trim());
  return m ? `${m[1]} ${m[2]}` : undefined;
}

/**
 * Pins the host key a compute type reported for a new instance: earlier entries for that
 * host and port (an old instance that had the same address) are replaced. Locked and atomic,
 * because several spawns may pin at once.
 */
export async function pinHostKey(knownHosts: string, host: string, port: number, keyLine: string): Promise<void> {
  const key = parseHostKey(keyLine);
  if (!key) throw new UserError(`The host key reported for ${host}:${port} is not an SSH public key: ${JSON.stringify(keyLine.slice(0, 80))}`);
  makePrivateDir(dirname(knownHosts));
  const name = knownHostsName(host, port);
  const release = await lockfile.lock(dirname(knownHosts), { lockfilePath: `${knownHosts}.lock`, retries: { retries: 50, minTimeout: 20, maxTimeout: 200 } });
  try {
    let current = "";
    try {
      current = readFileSync(knownHosts, "utf8");
    } catch {
      /* first entry */
    }
    const kept = current.split("\n").filter((l) => l.trim() && !l.split(/\s+/)[0]?.split(",").includes(name));
    await writeFileAtomic(knownHosts, [...kept, `${name} ${key}`, ""].join("\n"), { mode: 0o600 });
  } finally {
    await release();
  }
}
