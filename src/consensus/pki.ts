import { mkdirSync, readFileSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import type { FlatMapping } from "../config/flatten.ts";
import type { NodePaths } from "../node/paths.ts";
import { KEYS } from "./settings.ts";
import { certificateCovers, createCa, issueCertificate, type CertificatePair } from "./tls.ts";

export function caFromMapping(mapping: FlatMapping): CertificatePair | undefined {
  const certPem = mapping[KEYS.caCert];
  const keyPem = mapping[KEYS.caKey];
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}

/** The cluster CA from the shared config, or a new one to store there (callers write it under the config lock). */
export async function caOrNew(mapping: FlatMapping): Promise<{ ca: CertificatePair; created: boolean }> {
  const existing = caFromMapping(mapping);
  if (existing) return { ca: existing, created: false };
  return { ca: await createCa(), created: true };
}

export function caMapping(ca: CertificatePair): FlatMapping {
  return { [KEYS.caCert]: ca.certPem, [KEYS.caKey]: ca.keyPem };
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * This node's etcd certificate (server and client), valid for its mesh address and localhost.
 * Re-issued only when the CA changed or an address is not covered; the key file is 0600.
 */
export async function ensureNodeCertificate(paths: NodePaths, ca: CertificatePair, name: string, meshAddress: string): Promise<void> {
  const ips = [meshAddress, "127.0.0.1", "::1"];
  const current = readOr(paths.nodeCert);
  const currentCa = readOr(paths.caCert);
  if (current && currentCa === ca.certPem && readOr(paths.nodeKey) && certificateCovers(current, ca.certPem, ips)) return;
  const leaf = await issueCertificate(ca, { commonName: name, ips, dnsNames: ["localhost"] });
  mkdirSync(paths.tlsDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(paths.nodeKey, leaf.keyPem, { mode: 0o600, fsync: true });
  await writeFileAtomic(paths.nodeCert, leaf.certPem, { mode: 0o644, fsync: true });
  await writeFileAtomic(paths.caCert, ca.certPem, { mode: 0o644, fsync: true });
}
