import { run } from "../util/exec.ts";

/** An etcd release, from `etcd --version`. */
export interface EtcdVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** The version in `etcd --version` output ("etcd Version: 3.5.16"), or undefined. */
export function parseEtcdVersion(text: string): EtcdVersion | undefined {
  const m = /^etcd Version: (\d+)\.(\d+)\.(\d+)/m.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

function atLeast(v: EtcdVersion, major: number, minor: number, patch: number): boolean {
  return v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.patch >= patch;
}

/**
 * Keep-alive of a grpc-proxy to its upstreams, for etcd 3.5.13+ (the flags came with
 * etcd-io/etcd#17447; older releases refuse unknown flags, so they get none). gRPC raises any
 * client keep-alive time below 10 s to 10 s, so this alone notices a silent upstream only after
 * 10 s + the timeout: it backs up the agent's own upstream watch (node/upstream-watch.ts), which
 * notices a dead voter within ~2 s but not one whose kernel still accepts connections while
 * etcd hangs. 10 s is also above etcd servers' default --grpc-keepalive-min-time (5 s), so
 * voters of any version accept the pings.
 */
export function proxyKeepaliveArgs(v: EtcdVersion | undefined): string[] {
  return v && atLeast(v, 3, 5, 13) ? ["--dial-keepalive-time", "10s", "--dial-keepalive-timeout", "3s"] : [];
}

const known = new Map<string, Promise<EtcdVersion | undefined>>();

/**
 * The version of the etcd `binary` (a path or a name on PATH), asked once per process;
 * undefined when it cannot be run or does not say. Never throws.
 */
export function etcdVersion(binary: string): Promise<EtcdVersion | undefined> {
  let v = known.get(binary);
  if (!v) {
    v = run(binary, ["--version"], { timeoutMs: 10_000 }).then(
      (out) => (out.exitCode === 0 ? parseEtcdVersion(out.stdout) : undefined),
      () => undefined,
    );
    known.set(binary, v);
  }
  return v;
}
