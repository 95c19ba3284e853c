import { readFileSync } from "node:fs";
import writeFileAtomic from "write-file-atomic";
import type { FlatMapping } from "../config/flatten.ts";
import type { TlsFiles } from "./client.ts";
import { KEYS } from "./settings.ts";
import type { CertificatePair } from "./tls.ts";
import { certificateCovers } from "./tls-check.ts";
import { makePrivateDir } from "../util/private-dir.ts";

// The X.509 library is large and only needed when a certificate is made or checked (rarely, on
// a long-lived agent): load it on first use to keep the agent's resident memory small.
const tls = () => import("./tls.ts");

export function caFromMapping(mapping: FlatMapping): CertificatePair | undefined {
  const certPem = mapping[KEYS.caCert];
  const keyPem = mapping[KEYS.caKey];
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}

/** The cluster CA from the shared config, or a new one to store there (callers write it under the config lock). */
export async function caOrNew(mapping: FlatMapping): Promise<{ ca: CertificatePair; created: boolean }> {
  const existing = caFromMapping(mapping);
  if (existing) return { ca: existing, created: false };
  return { ca: await (await tls()).createCa(), created: true };
}

/**
 * `mapping` without the cluster CA: what a machine that is not (yet) becoming a member
 * (`slave --no-assimilate`, the upload before assimilation) may hold — never the CA's private
 * key. The certificate goes too: a config naming a CA is a member's (cluster-id.ts), which a
 * later `slave` would keep instead of giving it the CA it needs to join.
 */
export function withoutCa(mapping: FlatMapping): FlatMapping {
  const { [KEYS.caKey]: _key, [KEYS.caCert]: _cert, ...rest } = mapping;
  return rest;
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

/** The last (cert, CA, addresses) found valid, so the agent's ticks do not re-verify it. */
let verified = "";

/**
 * This node's etcd certificate (server and client), valid for its mesh address and localhost.
 * Re-issued only when the CA changed or an address is not covered; the key file is 0600.
 */
export async function ensureNodeCertificate(paths: TlsFiles & { readonly tlsDir: string }, ca: CertificatePair, name: string, meshAddress: string): Promise<void> {
  const ips = [meshAddress, "127.0.0.1", "::1"];
  const current = readOr(paths.nodeCert);
  const currentCa = readOr(paths.caCert);
  const key = `${current}|${currentCa}|${ca.certPem}|${ips.join(",")}`;
  if (verified === key) return;
  if (current && currentCa === ca.certPem && readOr(paths.nodeKey) && certificateCovers(current, ca.certPem, ips)) {
    verified = key;
    return;
  }
  const leaf = await (await tls()).issueCertificate(ca, { commonName: name, ips, dnsNames: ["localhost"] });
  makePrivateDir(paths.tlsDir);
  await writeFileAtomic(paths.nodeKey, leaf.keyPem, { mode: 0o600, fsync: true });
  await writeFileAtomic(paths.nodeCert, leaf.certPem, { mode: 0o644, fsync: true });
  await writeFileAtomic(paths.caCert, ca.certPem, { mode: 0o644, fsync: true });
}
