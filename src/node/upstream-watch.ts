import { hostOfUrl } from "./agent-state.ts";

/**
 * How a proxy node's upstream watch judges its voters (see UpstreamWatch):
 * - `intervalMs` between probe rounds and `timeoutMs` per probe (a TCP connect to the voter's
 *   client port over the mesh). With 1 s each, a voter that dies is left out of the proxy's
 *   upstreams within ~2 s of its death and the local endpoint answers again within ~3 s (the
 *   goal of bench/proxy-stall.ts): etcd's grpc-proxy itself only notices a silent upstream
 *   through gRPC keep-alive, which gRPC clamps to ≥ 10 s (3.5.13+), or never (3.4).
 * - `hitsToReadmit` answered rounds in a row bring a left-out voter back, so one lucky probe
 *   of a flapping voter does not restart the proxy twice a second.
 */
export const UPSTREAM_WATCH = { intervalMs: 1000, timeoutMs: 1000, hitsToReadmit: 2 } as const;

/** Per voter host: misses and hits in a row, and which hosts are left out. */
export interface UpstreamVerdict {
  readonly streak: ReadonlyMap<string, number>;
  readonly down: ReadonlySet<string>;
}

export const NO_VERDICT: UpstreamVerdict = { streak: new Map(), down: new Set() };

/**
 * One probe round's verdict. `round`: host → whether it answered. A host that did not answer
 * is left out at once — but only when another voter answered in the same round: when none
 * did, the fault is most likely this node's (overloaded, or cut off from the mesh) and leaving
 * voters out would not help. A left-out host comes back after `hitsToReadmit` answered rounds
 * in a row. Hosts no longer probed are forgotten. Pure; `streak` is > 0 for hits in a row,
 * < 0 for misses in a row.
 */
export function judgeUpstreams(prev: UpstreamVerdict, round: ReadonlyMap<string, boolean>, hitsToReadmit: number = UPSTREAM_WATCH.hitsToReadmit): UpstreamVerdict {
  const someoneAnswered = [...round.values()].some(Boolean);
  const streak = new Map<string, number>();
  const down = new Set<string>();
  for (const [host, ok] of round) {
    const before = prev.streak.get(host) ?? 0;
    const now = ok ? Math.max(before, 0) + 1 : Math.min(before, 0) - 1;
    streak.set(host, now);
    const wasDown = prev.down.has(host);
    if (ok ? wasDown && now < hitsToReadmit : wasDown || someoneAnswered) down.add(host);
  }
  return { streak, down };
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

export interface UpstreamWatchDeps {
  /** Whether host:port accepts a TCP connection within timeoutMs; never throws (util/tcp-probe.ts canConnect). */
  readonly probe: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Called with the hosts to leave out whenever that set changes. */
  readonly onChange: (down: ReadonlySet<string>) => void;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}

/**
 * Watches the voters a proxy node's grpc-proxy forwards to, between the agent's ticks (which
 * come only every few seconds once it is ready): a probe round every second while it follows
 * any endpoints, none otherwise. The agent leaves the hosts it reports out of the proxy's
 * upstreams (step-consensus.ts proxyUpstreams).
 */
export class UpstreamWatch {
  private endpoints: readonly string[] = [];
  private verdict: UpstreamVerdict = NO_VERDICT;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly d: UpstreamWatchDeps) {}

  /** The voters' client URLs to watch; [] (not a proxy) stops the rounds and forgets every verdict. */
  follow(endpoints: readonly string[]): void {
    this.endpoints = endpoints;
    if (endpoints.length === 0) {
      this.stop();
      if (this.verdict.down.size > 0) this.d.onChange(new Set());
      this.verdict = NO_VERDICT;
      return;
    }
    this.timer ??= setInterval(() => void this.round(), this.d.intervalMs ?? UPSTREAM_WATCH.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One probe round (the timer's; exported for tests). A round still running is not overlapped. */
  async round(): Promise<void> {
    if (this.running || this.endpoints.length === 0) return;
    this.running = true;
    try {
      const targets = this.endpoints.map((e) => ({ host: hostOfUrl(e), port: Number(new URL(e).port) }));
      const answers = await Promise.all(targets.map((t) => this.d.probe(t.host, t.port, this.d.timeoutMs ?? UPSTREAM_WATCH.timeoutMs)));
      // Endpoints may have changed while probing: judge only what is still followed.
      const followed = new Set(this.endpoints.map(hostOfUrl));
      const round = new Map(targets.map((t, i) => [t.host, answers[i] as boolean] as const).filter(([h]) => followed.has(h)));
      const next = judgeUpstreams(this.verdict, round);
      const changed = !sameSet(next.down, this.verdict.down);
      this.verdict = next;
      if (changed) this.d.onChange(next.down);
    } finally {
      this.running = false;
    }
  }
}
