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
 * — once the keys have been missing ALLOWED_STALE_MS, and at most once per
 * LOCKOUT_RESTART_INTERVAL_MS: while many nodes join at once (slow under load), restarting
 * for each would disrupt every peering again and again.
 */
export class AllowedKeysRefresh {
  private staleSince: number | undefined;
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
    if (p.missing.length === 0) this.staleSince = undefined;
    else this.staleSince ??= now;
    const lockedOut =
      this.staleSince !== undefined &&
      now - this.staleSince > ALLOWED_STALE_MS &&
      now - this.lastRestart > LOCKOUT_RESTART_INTERVAL_MS &&
      p.missing.some((k) => !p.connected.has(k) && p.links.includes(k));
    if (lockedOut && p.running) this.lastRestart = now;
    return lockedOut;
  }
}
