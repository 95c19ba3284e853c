/** How long a neighbour whose key is not allowed in may stay unconnected before a restart lets it in. */
export const ALLOWED_STALE_MS = 15_000;
/** At most one such restart this often. */
export const LOCKOUT_RESTART_INTERVAL_MS = 120_000;

/**
 * The allowed-keys refresh: yggdrasil's AllowedPublicKeys only change with a restart. A new
 * neighbour with a host is dialled from here (or by others), so its key need not be allowed
 * in at once. But if it stays unconnected (it moved and its new host is not known here yet;
 * it cannot be reached; in a big cluster, neither side picked the other while all its own
 * picks refuse it), it can only come in itself: then yggdrasil is restarted with the new keys
 * — once such a neighbour has been seen unconnected at every look for ALLOWED_STALE_MS, and at
 * most once per LOCKOUT_RESTART_INTERVAL_MS: while many nodes join at once (slow under load),
 * restarting for each would disrupt every peering again and again.
 *
 * What counts is how long the neighbour stays unconnected, not how long its key has been
 * missing: a key missing for minutes whose peering (dialled from here) is down for a moment —
 * both ends frozen or cut off for a few seconds — is dialled again within 2 s, and a restart
 * then would only drop every other peering too (on Yggdrasil 0.5.12 a restarted node can stay
 * cut off with its links "Up": seen in the docker e2e test after a 4 s pause of the node).
 */
export class AllowedKeysRefresh {
  /** Missing key this node dials → since when it has been unconnected at every look (ms). */
  private readonly unconnectedSince = new Map<string, number>();
  private lastRestart = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Called on every mesh reconcile. `missing`: keys of current neighbours the running
   * yggdrasil does not allow; `connected`: keys of the peers up at the last look; `links`:
   * the keys this node dials (only its own links count: the others never connect to it
   * directly); `running`: yggdrasil runs (only then is a restart counted). True: restart now.
   */
  due(p: { readonly missing: readonly string[]; readonly connected: ReadonlySet<string>; readonly links: readonly string[]; readonly running: boolean }): boolean {
    const now = this.now();
    const watched = new Set(p.missing.filter((k) => p.links.includes(k)));
    for (const k of [...this.unconnectedSince.keys()]) if (!watched.has(k) || p.connected.has(k)) this.unconnectedSince.delete(k);
    for (const k of watched) if (!p.connected.has(k) && !this.unconnectedSince.has(k)) this.unconnectedSince.set(k, now);
    const lockedOut =
      now - this.lastRestart > LOCKOUT_RESTART_INTERVAL_MS && [...this.unconnectedSince.values()].some((since) => now - since > ALLOWED_STALE_MS);
    if (lockedOut && p.running) this.lastRestart = now;
    return lockedOut;
  }
}
