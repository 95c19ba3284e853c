import { createHash } from "node:crypto";
import type { FlatMapping } from "../config/flatten.ts";
import { KEYS } from "./settings.ts";

/**
 * A cluster's identity: the SHA-256 fingerprint of its CA certificate (DER), as 64 hex digits.
 * Every cluster makes exactly one CA, once, on its first node, and every member holds it (its
 * etcd certificate is issued from it), so two members are in the same cluster exactly when
 * their fingerprints match; clusters made before this identity existed have one already.
 */
export type ClusterId = string & { readonly __brand: "ClusterId" };

/**
 * The identity of the cluster `mapping` belongs to, or undefined when it names no CA (a
 * machine that never joined one, or a host slaved with `--no-assimilate`). A CA certificate
 * that is not PEM still gets a stable identity (the hash of its text), so it is compared,
 * never ignored.
 */
export function clusterIdOf(mapping: FlatMapping): ClusterId | undefined {
  const pem = mapping[KEYS.caCert];
  return pem ? clusterIdOfPem(pem) : undefined;
}

/** The identity of the cluster whose CA certificate is `pem` (see {@link ClusterId}). */
export function clusterIdOfPem(pem: string): ClusterId {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem)?.[1];
  const bytes = body ? Buffer.from(body.replace(/\s+/g, ""), "base64") : Buffer.from(pem, "utf8");
  return createHash("sha256").update(bytes).digest("hex") as ClusterId;
}

/**
 * The identity of the cluster a node's CA file (`node/etcd/tls/ca.crt`, text as read) names,
 * or undefined when it holds no PEM certificate (empty, truncated): a file that is there is
 * not enough to say which cluster.
 */
export function clusterIdOfCaFile(text: string): ClusterId | undefined {
  return text.includes("BEGIN CERTIFICATE") ? clusterIdOfPem(text) : undefined;
}

/** How a cluster is named in messages: the first 16 hex digits of its fingerprint. */
export function clusterLabel(id: ClusterId): string {
  return `cluster ${id.slice(0, 16)}`;
}

/**
 * Why a machine whose config is `theirs` must not be brought into (or learnt by) the cluster
 * of `ours`, or undefined when nothing stands in the way: either side has no cluster yet, or
 * both name the same one. `who` names the machine, for the message.
 */
export function otherClusterProblem(ours: FlatMapping, theirs: FlatMapping, who: string): string | undefined {
  return otherClusterIdProblem(clusterIdOf(ours), clusterIdOf(theirs), who);
}

/** {@link otherClusterProblem} for identities already known (e.g. from a node's CA file). */
export function otherClusterIdProblem(mine: ClusterId | undefined, other: ClusterId | undefined, who: string): string | undefined {
  if (!mine || !other || mine === other) return undefined;
  return (
    `${who} is a member of ${clusterLabel(other)}, but this machine manages ${clusterLabel(mine)}; nothing was changed, here or there. ` +
    `To move it into ${clusterLabel(mine)} on purpose, run \`raptiformica clean\` on it first (it leaves ${clusterLabel(other)}, keeping its identity), then run this again. ` +
    `To manage ${clusterLabel(other)} from this machine instead, use another cache dir (\`-c DIR\`) for it.`
  );
}
