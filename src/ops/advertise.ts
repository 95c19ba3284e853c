import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { err, ok, type Result } from "../util/result.ts";

export interface Advertised {
  readonly host: string;
  readonly port: number;
}

/** Records how this machine was reached (`<cache>/last_advertised`), as the original did. */
export async function writeAdvertised(path: string, advertised: Advertised): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${JSON.stringify(advertised)}\n`, { mode: 0o644, fsync: true });
}

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
    if (typeof parsed.host !== "string" || !Number.isInteger(port)) throw new Error("expected {\"host\": string, \"port\": number}");
    return ok({ host: parsed.host, port });
  } catch (e) {
    return err(`${path} is not valid: ${(e as Error).message}; run \`raptiformica advertise HOST --port PORT\` to rewrite it`);
  }
}
