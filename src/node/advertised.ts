import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { describeHostProblem, parseHost } from "../mesh/host.ts";
import { err, ok, type Result } from "../util/result.ts";
import { makePrivateDir } from "../util/private-dir.ts";

export interface Advertised {
  readonly host: string;
  readonly port: number;
}

/**
 * Records how this machine was reached (`<cache>/last_advertised`), as the original did.
 * `host` must be in the form `parseHost` returns (the `advertise` command parses it).
 */
export async function writeAdvertised(path: string, advertised: Advertised): Promise<void> {
  makePrivateDir(dirname(path));
  await writeFileAtomic(path, `${JSON.stringify(advertised)}\n`, { mode: 0o644, fsync: true });
}

/**
 * The recorded address, undefined when none was recorded; an error naming the file when it
 * cannot be read or holds no usable host and port (the same `parseHost` check as `advertise`).
 */
export function readAdvertised(path: string): Result<Advertised | undefined, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? ok(undefined) : err(`${path} cannot be read: ${(e as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as { host?: unknown; port?: unknown };
    const port = Number(parsed.port);
    if (typeof parsed.host !== "string" || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error("expected {\"host\": string, \"port\": 1-65535}");
    // Checked with the rule the cluster dials it with: a bad host here would go into the KV.
    const host = parseHost(parsed.host);
    if (!host.ok) throw new Error(describeHostProblem(parsed.host, host.error, 'in "port"'));
    return ok({ host: host.value.value, port });
  } catch (e) {
    return err(`${path} is not valid: ${(e as Error).message}; run \`raptiformica advertise HOST --port PORT\` to rewrite it`);
  }
}
