const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses a duration as `--timeout` takes it: a number of seconds (`90`), or numbers with units
 * `ms`, `s`, `m`, `h`, `d` written together (`500ms`, `90s`, `1h30m`, `1.5h`). Returns seconds
 * (> 0), or a sentence saying what is wrong. Pure; throws nothing.
 */
export function parseDuration(text: string): { ok: true; seconds: number } | { ok: false; problem: string } {
  const t = text.trim();
  const bad = { ok: false as const, problem: `"${text}" is not a duration: use seconds (90) or numbers with units ms, s, m, h, d (500ms, 90s, 1h30m)` };
  if (/^[0-9]+(\.[0-9]+)?$/.test(t)) {
    const seconds = Number(t);
    return seconds > 0 ? { ok: true, seconds } : { ok: false, problem: `"${text}" is not a duration longer than zero` };
  }
  const part = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/y;
  let seconds = 0;
  let at = 0;
  while (at < t.length) {
    part.lastIndex = at;
    const m = part.exec(t);
    if (!m) return bad;
    seconds += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
    at = part.lastIndex;
  }
  if (t.length === 0) return bad;
  return seconds > 0 ? { ok: true, seconds } : { ok: false, problem: `"${text}" is not a duration longer than zero` };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;
const CLOCK = /^([01]?\d|2[0-3]):([0-5]\d)$/;

/**
 * Parses a time as `--at` takes it: RFC 3339 with its offset (`2026-12-01T04:30:00Z`,
 * `2026-12-01T05:30:00+01:00`), or `HH:MM` on this machine's local clock: the next such time
 * (today, or tomorrow once it has passed). Returns ms since the epoch, rounded up to a whole
 * second, or a sentence saying what is wrong. Pure but for `now` (ms since the epoch); throws nothing.
 */
export function parseTimeOfRun(text: string, now: number): { ok: true; ms: number } | { ok: false; problem: string } {
  const t = text.trim();
  const clock = CLOCK.exec(t);
  if (clock) {
    const d = new Date(now);
    d.setHours(Number(clock[1]), Number(clock[2]), 0, 0);
    if (d.getTime() <= now) d.setDate(d.getDate() + 1);
    return { ok: true, ms: d.getTime() };
  }
  if (RFC3339.test(t)) {
    const ms = Date.parse(t.replace(" ", "T"));
    if (Number.isFinite(ms)) return { ok: true, ms: Math.ceil(ms / 1000) * 1000 };
  }
  return { ok: false, problem: `"${text}" is not a time: use RFC 3339 with its offset (2026-12-01T04:30:00Z) or HH:MM on this machine's clock (04:30, the next such time)` };
}
