import { existsSync } from "node:fs";
import type { Context } from "../context.ts";

/**
 * Whether this machine is a cluster member: it holds a node certificate from the cluster's CA.
 * The one place that decides whether a command talks to the cluster here (its KV) or through a
 * member over SSH (cluster.ts `clusterFor`).
 */
export function isMember(ctx: Pick<Context, "node">): boolean {
  return existsSync(ctx.node.nodeCert);
}
