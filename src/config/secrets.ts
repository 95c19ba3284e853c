import { randomBytes } from "node:crypto";
import { KEY_ROOT } from "./flatten.ts";
import type { LocalConfig } from "./local.ts";

export function secretKey(service: string): string {
  return `${KEY_ROOT}/meshnet/${service}/password`;
}

/** A fresh cluster secret from the CSPRNG: 32 bytes, hex (safe in any config format). */
export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString("hex");
}

/**
 * The cluster-wide secret of `service`, created once. The check and the creation happen in one
 * locked read-modify-write, so two processes racing here end up with the same secret. The
 * mutable config that holds it is written 0600.
 */
export async function ensureSharedSecret(config: LocalConfig, service: string, generate: () => string = generateSecret): Promise<string> {
  const key = secretKey(service);
  const existing = config.snapshot().mapping[key];
  if (existing) return existing;
  const after = await config.update((m) => (m[key] ? m : { ...m, [key]: generate() }));
  return after[key] as string;
}
