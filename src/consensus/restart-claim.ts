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

/**
 * Gives the restart slot back before its lease runs out: deletes KEYS.restartClaim if `holder`
 * still holds it (a compare on the value, so a slot that expired and went to another member is
 * left alone). For a member whose restarted etcd answers again: the next member then restarts
 * at once instead of up to RESTART_CLAIM_TTL_S later. True when this call deleted it. Throws
 * ClusterUnavailable (DeadlineExceeded) when the KV does not answer within `ms`.
 */
export async function releaseRestart(client: Etcd3, holder: string, ms = 3000): Promise<boolean> {
  const res = await deadline("etcd restart claim release", ms, client.if(KEYS.restartClaim, "Value", "==", holder).then(client.delete().key(KEYS.restartClaim)).commit());
  return res.succeeded;
}
