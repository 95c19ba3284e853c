import { existsSync, readFileSync } from "node:fs";
import { clusterIdOfCaFile, type ClusterId } from "../../consensus/cluster-id.ts";
import type { Context } from "../context.ts";

/**
 * Whether this machine is a cluster member: it holds a node certificate from the cluster's CA.
 * The one place that decides whether a command talks to the cluster here (its KV) or through a
 * member over SSH (cluster.ts `clusterFor`).
 * Throws nothing.
 */
export function isMember(ctx: Pick<Context, "node">): boolean {
  return existsSync(ctx.node.nodeCert);
}

/**
 * The cluster this machine is a member of, from its node's CA file (what its etcd certificate
 * was issued from), or undefined when it is no member. This is what a member reports in its
 * `--json` answers (cluster/wire.ts `clusterId`), so that an operator machine never takes an
 * answer, or sends a write, to a member of another cluster.
 * @throws the file system's error when the CA file is there but cannot be read (permissions).
 */
export function ownClusterId(ctx: Pick<Context, "node">): ClusterId | undefined {
  if (!isMember(ctx) || !existsSync(ctx.node.caCert)) return undefined;
  return clusterIdOfCaFile(readFileSync(ctx.node.caCert, "utf8"));
}
