import { hostOfUrl } from "./agent-state.ts";

/**
 * How a proxy node's upstream watch judges its voters (see UpstreamWatch): every `intervalMs`
 * it connects to each voter's liveness port (the agent's, node/probe-listener.ts) over the
 * mesh, `timeoutMs` each; an accepted or refused connection means the voter's host is up. With
 * 1 s each, a voter that dies is left out of the proxy's upstreams within ~2 s, and the local
 * endpoint answers again within ~3 s (the goal of bench/proxy-stall.ts): etcd's grpc-proxy
 * itself only notices a silent upstream through gRPC keep-alive, which gRPC clamps to ≥ 10 s
 * (3.5.13+), or never (3.4). `hitsToReadmit` answered probes in a row bring a left-out voter
 * back, so one lucky probe of a flapping voter does not restart the proxy twice a second. A
 * probe is a TCP handshake: a few tens of microseconds of CPU at each end.
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
  /** Whether the host answers on host:port within timeoutMs; never throws (util/tcp-probe.ts hostAnswers). */
  readonly probe: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Called with the hosts to leave out whenever that set changes. */
  readonly onChange: (down: ReadonlySet<string>) => void;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/**
 * How long (ms) no followed voter may answer before the first answer again asks for the proxy
 * to be restarted (UpstreamWatch.takeReconnect): a grpc-proxy cut off from every upstream backs
 * its reconnects off (gRPC: 1 s, ×1.6 each, jittered), so after a 10 s partition it answered
 * again only 3.5–4.4 s after the heal in a chaos run; a fresh proxy connects at once.
 */
export const SILENT_RECONNECT_MS = 2000;

/**
 * Watches the voters a proxy node's grpc-proxy forwards to, between the agent's ticks (which
 * come only every few seconds once it is ready): a round every second while it follows any
 * endpoints, none otherwise; see UPSTREAM_WATCH for what a round looks at. The agent leaves
 * the hosts it reports out of the proxy's upstreams (step-consensus.ts proxyUpstreams).
 */
export class UpstreamWatch {
  private endpoints: readonly string[] = [];
  private port = 0;
  private verdict: UpstreamVerdict = NO_VERDICT;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Since when no followed voter has answered a round (ms), while none does. */
  private silentSince: number | undefined;
  /** Voters answer again after SILENT_RECONNECT_MS or more of silence: for takeReconnect. */
  private reconnectDue: { silentMs: number } | undefined;
  private readonly now: () => number;

  constructor(private readonly d: UpstreamWatchDeps) {
    this.now = d.now ?? Date.now;
  }

  /**
   * Whether the proxy should be restarted to reconnect now — its voters answer again after it
   * could reach none for SILENT_RECONNECT_MS or more — and for how long they were silent (ms);
   * undefined otherwise. Cleared by the call.
   */
  takeReconnect(): { silentMs: number } | undefined {
    const due = this.reconnectDue;
    this.reconnectDue = undefined;
    return due;
  }

  /** The voter hosts to leave out of the proxy's upstreams now. */
  get down(): ReadonlySet<string> {
    return this.verdict.down;
  }

  /**
   * The voters' client URLs to watch and the liveness port to probe them on; [] (not a proxy)
   * stops the rounds and forgets every verdict.
   */
  follow(endpoints: readonly string[], port = 0): void {
    this.endpoints = endpoints;
    this.port = port;
    if (endpoints.length === 0) {
      this.stop();
      if (this.verdict.down.size > 0) this.d.onChange(new Set());
      this.verdict = NO_VERDICT;
      this.silentSince = undefined;
      this.reconnectDue = undefined;
      return;
    }
    this.timer ??= setInterval(() => void this.round(), this.d.intervalMs ?? UPSTREAM_WATCH.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round (the timer's; public for tests). A round still running is not overlapped. */
  async round(): Promise<void> {
    if (this.running || this.endpoints.length === 0) return;
    this.running = true;
    try {
      const hosts = this.endpoints.map(hostOfUrl);
      const answers = await Promise.all(hosts.map((h) => this.d.probe(h, this.port, this.d.timeoutMs ?? UPSTREAM_WATCH.timeoutMs)));
      // Endpoints may have changed while probing: judge only what is still followed.
      const followed = new Set(this.endpoints.map(hostOfUrl));
      const round = new Map(hosts.map((h, i) => [h, answers[i] as boolean] as const).filter(([h]) => followed.has(h)));
      const next = judgeUpstreams(this.verdict, round);
      const changed = !sameSet(next.down, this.verdict.down);
      this.verdict = next;
      const t = this.now();
      let back = false;
      if (round.size > 0 && ![...round.values()].some(Boolean)) this.silentSince ??= t;
      else if (this.silentSince !== undefined) {
        if (t - this.silentSince >= SILENT_RECONNECT_MS) {
          this.reconnectDue = { silentMs: t - this.silentSince };
          back = true;
        }
        this.silentSince = undefined;
      }
      if (changed || back) this.d.onChange(next.down);
    } finally {
      this.running = false;
    }
  }
}
