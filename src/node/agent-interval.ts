/**
 * How long the agent sleeps after a tick (ms); `busyTicks` counts the converging ticks in a
 * row and is returned updated.
 *
 * Ready: the steady period, or 1 s on a leader with a voter change under way (a dead voter in
 * its grace period, a learner to promote) so the change is looked at each second — or sooner,
 * just after a dead voter's grace period ends (`voterDueMs`), so its replacement is not up to a
 * second late. Converging:
 * `busyMs` at first, doubling every 8 ticks up to 2 s (a poke still wakes it at once) — a
 * node that waits for the mesh to route to a member gains nothing from asking twice a second
 * for minutes, while 50 of them doing so starve the machine they share. Never above `steadyMs`.
 */
/** How long after a grace period ends the leader looks again (ms). */
export const VOTER_DUE_SLACK_MS = 20;

export function nextInterval(
  s: { readonly ready: boolean; readonly leader: boolean; readonly voterChangePending: boolean; readonly busyTicks: number; readonly voterDueMs?: number | undefined },
  o: { readonly steadyMs?: number | undefined; readonly busyMs?: number | undefined } = {},
): { ms: number; busyTicks: number } {
  const steady = o.steadyMs ?? 5000;
  if (s.ready) {
    if (!(s.voterChangePending && s.leader)) return { ms: steady, busyTicks: 0 };
    // A few ms past the due time: the grace counts as over at >=, measured by the next tick's clock.
    const due = s.voterDueMs === undefined ? 1000 : Math.max(VOTER_DUE_SLACK_MS, s.voterDueMs + VOTER_DUE_SLACK_MS);
    return { ms: Math.min(steady, 1000, due), busyTicks: 0 };
  }
  const busy = o.busyMs ?? 500;
  const busyTicks = s.busyTicks + 1;
  return { ms: Math.min(steady, Math.max(busy, 2000), busy * 2 ** Math.floor(busyTicks / 8)), busyTicks };
}

/**
 * The pause between two ticks of the agent's loop: `wait(ms)` resolves after `ms` milliseconds,
 * or at once when `poke()` is called meanwhile (a watched change, SIGUSR1, `members --rejoin`,
 * stop). A poke while no pause is under way does nothing: the tick running then sees the change.
 * Shared by the agent (agent.ts) and the simulated members of bench/sim-members.ts.
 */
export class TickPause {
  private wake: (() => void) | undefined;

  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  poke(): void {
    this.wake?.();
  }
}
