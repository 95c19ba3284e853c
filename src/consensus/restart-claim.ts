import type { Etcd3 } from "etcd3";
import { deadline } from "./client.ts";
import { KEYS } from "./settings.ts";

/**
 * How long a member's claim to restart its etcd lasts (s): etcd restarts in about a second and
 * catches up in a few more, so the next member restarts no sooner than this after the last one.
 */
export const RESTART_CLAIM_TTL_S = 10;

/** What a claim came to: the slot, or who holds it (a member name; "" when the key has no value). */
export type RestartClaim = { readonly claimed: true } | { readonly claimed: false; readonly holder: string };

/**
 * Claims the cluster's one restart slot for `holder` (a member name): creates KEYS.restartClaim
 * under a lease of `ttlSeconds` that is never kept alive, so the slot frees itself when the
 * lease expires, whatever becomes of the holder. `{ claimed: true }` when this call got the
 * slot, else who holds it. Throws ClusterUnavailable (DeadlineExceeded) when the KV does not
 * answer within `ms`, and etcd's errors as they come.
 */
export async function claimRestart(client: Etcd3, holder: string, ttlSeconds: number = RESTART_CLAIM_TTL_S, ms = 3000): Promise<RestartClaim> {
  const lease = client.lease(ttlSeconds, { autoKeepAlive: false });
  try {
    const id = await deadline("etcd lease grant for the restart claim", ms, lease.grant());
    const res = await deadline(
      "etcd restart claim",
      ms,
      client
        .if(KEYS.restartClaim, "Create", "==", 0)
        .then(client.put(KEYS.restartClaim).value(holder).lease(id))
        .else(client.get(KEYS.restartClaim))
        .commit(),
    );
    if (res.succeeded) return { claimed: true };
    await lease.revoke().catch(() => undefined);
    const held = res.responses[0]?.response_range?.kvs[0]?.value;
    return { claimed: false, holder: held ? held.toString() : "" };
  } finally {
    // Only the local keep-alive machinery; the lease itself lives on to its TTL.
    lease.release();
  }
}
