import { connect } from "node:net";

/**
 * Whether the host at `host` answers a TCP connection to `port` within `timeoutMs` (ms): it
 * accepts, or refuses (a reset also proves the host is up and reachable). False when the
 * connection times out or the host or network is unreachable. The connection is closed at
 * once; nothing is sent. Never throws.
 */
export function hostAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED"));
  });
}
