import { randomBytes } from "node:crypto";
import { KEY_ROOT, type FlatMapping } from "../../config/flatten.ts";

/**
 * The cluster's mesh password: Yggdrasil 0.5 (0.5.12 and newer) takes a per-link password
 * (`?password=` on a listener and on a peer URI) into its handshake, so a node that holds an
 * allowed key but not the password is still refused, and the listener answers nobody else.
 * Made with the cluster (its first node, with the CA) and shared through the KV like the CA;
 * 0.4 has no such option and ignores it. A cluster made before it existed runs without one
 * until `config set` gives it one (every member restarts yggdrasil when it changes).
 */
export const MESH_PASSWORD_KEY = `${KEY_ROOT}/meshnet/yggdrasil/password`;

/** Yggdrasil refuses a password longer than 64 bytes (blake2b's key size); URI-safe characters only, so it goes into a URI unescaped. */
const PASSWORD = /^[A-Za-z0-9_-]{16,64}$/;

/** The problem with a value of MESH_PASSWORD_KEY, if any (the rule `config set` and the agent share). */
export function meshPasswordProblem(value: string | undefined): string | undefined {
  if (value === undefined || PASSWORD.test(value)) return undefined;
  return `Config key ${MESH_PASSWORD_KEY} must be 16 to 64 characters of A-Z, a-z, 0-9, "_" and "-" (Yggdrasil takes at most 64 bytes, and it goes into peer URIs), but it is ${value.length} characters${/[^A-Za-z0-9_-]/.test(value) ? " with others among them" : ""}.`;
}

/** The mesh password of `mapping` when it holds a usable one (see meshPasswordProblem), else undefined. */
export function meshPassword(mapping: FlatMapping): string | undefined {
  const v = mapping[MESH_PASSWORD_KEY];
  return v !== undefined && PASSWORD.test(v) ? v : undefined;
}

/** A new mesh password: 32 random bytes, base64url (43 characters). */
export function newMeshPassword(): string {
  return randomBytes(32).toString("base64url");
}
