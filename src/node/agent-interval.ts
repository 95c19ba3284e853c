/**
 * How long the agent sleeps after a tick (ms); `busyTicks` counts the converging ticks in a
 * row and is returned updated.
 *
 * Ready: the steady period, or 1 s on a leader with a voter change under way (a dead voter in
 * its grace period, a learner to promote) so the change is looked at each second. Converging:
 * `busyMs` at first, doubling every 8 ticks up to 2 s (a poke still wakes it at once) — a
 * node that waits for the mesh to route to a member gains nothing from asking twice a second
 * for minutes, while 50 of them doing so starve the machine they share. Never above `steadyMs`.
 */
export function nextInterval(
  s: { readonly ready: boolean; readonly leader: boolean; readonly voterChangePending: boolean; readonly busyTicks: number },
  o: { readonly steadyMs?: number | undefined; readonly busyMs?: number | undefined } = {},
): { ms: number; busyTicks: number } {
  const steady = o.steadyMs ?? 5000;
  if (s.ready) return { ms: s.voterChangePending && s.leader ? Math.min(steady, 1000) : steady, busyTicks: 0 };
  const busy = o.busyMs ?? 500;
  const busyTicks = s.busyTicks + 1;
  return { ms: Math.min(steady, Math.max(busy, 2000), busy * 2 ** Math.floor(busyTicks / 8)), busyTicks };
}
