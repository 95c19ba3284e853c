/**
 * The link watchdog's timing (ms). Every `probeEveryMs` the node probes each peer it has a link
 * up to, over the mesh (a TCP connection to the peer's agent liveness port on its mesh address,
 * `timeoutMs`; accepted or refused both prove the packets got there). A peer linked but not
 * reachable for `repeerAfterMs` is re-peered (its outbound peering removed and added again, so
 * both ends start that peering afresh), at most once per `repeerEveryMs` each. When no linked
 * peer at all has been reachable for `restartAfterMs`, this node's own mesh state is the likely
 * fault: yggdrasil is restarted, at most once per `restartEveryMs`.
 *
 * Why: Yggdrasil 0.5.12 (Debian's) can keep links up that carry no traffic, after two peered
 * nodes restart at the same moment (a `docker restart` of one while the other restarts its
 * yggdrasil to take a new key in): the links stay "Up" in getPeers, nothing routes to the
 * restarted node, and nothing in yggdrasil notices — seen for minutes in the docker e2e test.
 */
export const LINK_WATCH = {
  probeEveryMs: 3000,
  timeoutMs: 2000,
  repeerAfterMs: 9000,
  repeerEveryMs: 60_000,
  restartAfterMs: 24_000,
  restartEveryMs: 300_000,
} as const;

export type LinkWatchTiming = { readonly [K in keyof typeof LINK_WATCH]: number };

/** What to do after a probe round: the peers (public keys) to re-peer, and whether to restart yggdrasil. */
export interface LinkVerdict {
  readonly repeer: readonly string[];
  readonly restart: boolean;
}

/**
 * The watchdog's memory and rules (see LINK_WATCH), apart from the probing so they can be
 * tested alone. Pure but for its own state; never throws.
 */
export class LinkWatchdog {
  private readonly badSince = new Map<string, number>();
  private readonly lastRepeer = new Map<string, number>();
  private lastRestart = Number.NEGATIVE_INFINITY;

  constructor(private readonly t: LinkWatchTiming = LINK_WATCH) {}

  /**
   * One probe round: `round` maps the public key of every peer with a link up to whether it
   * answered over the mesh; peers not in it (no link up) are forgotten — dialling them is the
   * peer loop's job. `now` in ms.
   */
  judge(round: ReadonlyMap<string, boolean>, now: number): LinkVerdict {
    for (const k of [...this.badSince.keys()]) if (!round.has(k)) this.badSince.delete(k);
    for (const [k, ok] of round) {
      if (ok) this.badSince.delete(k);
      else if (!this.badSince.has(k)) this.badSince.set(k, now);
    }
    const badFor = (k: string) => now - (this.badSince.get(k) ?? now);
    const allBad = round.size > 0 && [...round.keys()].every((k) => this.badSince.has(k) && badFor(k) >= this.t.restartAfterMs);
    if (allBad && now - this.lastRestart >= this.t.restartEveryMs) {
      this.lastRestart = now;
      this.badSince.clear();
      return { repeer: [], restart: true };
    }
    const repeer = [...this.badSince.keys()].filter((k) => badFor(k) >= this.t.repeerAfterMs && now - (this.lastRepeer.get(k) ?? Number.NEGATIVE_INFINITY) >= this.t.repeerEveryMs);
    for (const k of repeer) this.lastRepeer.set(k, now);
    return { repeer, restart: false };
  }
}
