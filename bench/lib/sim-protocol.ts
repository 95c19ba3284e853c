/**
 * What bench/sim-members.ts and its worker processes (sim-worker.ts) say to each other over the
 * IPC channel of `fork`. Times cross the process boundary as wall-clock milliseconds with
 * sub-millisecond precision (wallNow), comparable between processes of one host.
 */
import type { TlsFiles } from "../../src/consensus/client.ts";

/** What the coordinator hands a worker at fork time (as JSON in argv[2]). */
export interface WorkerSetup {
  readonly members: readonly { index: number; publicKey: string; address: string; role: "voter" | "proxy"; clientPort: number }[];
  readonly peerPort: number;
  readonly tls: TlsFiles;
  /** A JSON file holding the local cache every member starts with (base config + all neighbours). */
  readonly cacheFile: string;
  readonly noFiles: string;
  readonly steadyMs: number;
  readonly probeKey: string;
}

export type WorkerCommand =
  | { readonly type: "start"; readonly rampMs: number }
  | { readonly type: "probe"; readonly value: string }
  | { readonly type: "stats" }
  | { readonly type: "stop" };

export type WorkerReport =
  | { readonly type: "ready" }
  | { readonly type: "registered"; readonly index: number; readonly startedAt: number; readonly at: number }
  | { readonly type: "errors"; readonly counts: readonly [string, number][]; readonly membersWithErrors: number }
  | { readonly type: "probe"; readonly value: string; readonly index: number; readonly at: number }
  | { readonly type: "stats"; readonly rss: number; readonly heapUsed: number; readonly cpuMicros: number; readonly loopP99Ms: number; readonly loopMaxMs: number }
  | { readonly type: "stopped" };

/** Wall-clock ms, sub-ms precision, comparable across this host's processes. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

