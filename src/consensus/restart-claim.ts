import type { Etcd3 } from "etcd3";
import { deadline } from "./client.ts";
import { KEYS } from "./settings.ts";

/**
 * How long a member's claim to restart its etcd lasts (s): etcd restarts in about a second and
 * catches up in a few more, so the next member restarts no sooner than this after the last one.
 */
export const RESTART_CLAIM_TTL_S = 10;

/**
 * Claims the cluster's one restart slot for `holder` (a member name): creates KEYS.restartClaim
 * under a lease of `ttlSeconds` that is never kept alive, so the slot frees itself when the
 * lease expires, whatever becomes of the holder. True when this call got the slot, false when
 * someone holds it. Throws ClusterUnavailable (DeadlineExceeded) when the KV does not answer
 * within `ms`, and etcd's errors as they come.
 */
export async function claimRestart(client: Etcd3, holder: string, ttlSeconds: number = RESTART_CLAIM_TTL_S, ms = 3000): Promise<boolean> {
  const lease = client.lease(ttlSeconds, { autoKeepAlive: false });
  try {
    const id = await deadline("etcd lease grant for the restart claim", ms, lease.grant());
    const res = await deadline(
      "etcd restart claim",
      ms,
      client.if(KEYS.restartClaim, "Create", "==", 0).then(client.put(KEYS.restartClaim).value(holder).lease(id)).commit(),
    );
    if (!res.succeeded) await lease.revoke().catch(() => undefined);
    return res.succeeded;
  } finally {
    // Only the local keep-alive machinery; the lease itself lives on to its TTL.
    lease.release();
  }
}
