import { connect } from "node:net";

/**
 * Whether a TCP connection to `host`:`port` opens within `timeoutMs` (ms). The connection is
 * closed at once; nothing is sent. Never throws: refused, unreachable and timed out are false.
 */
export function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
