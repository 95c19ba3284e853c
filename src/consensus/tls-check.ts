import { X509Certificate } from "node:crypto";

/** Whether `certPem` was signed by `caPem` and covers every IP in `ips` (to decide on re-issuing). */
export function certificateCovers(certPem: string, caPem: string, ips: readonly string[]): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.verify(ca.publicKey)) return false;
    if (new Date(cert.validTo).getTime() < Date.now() + 30 * 86400_000) return false;
    return ips.every((ip) => cert.checkIP(ip) !== undefined);
  } catch {
    return false;
  }
}
