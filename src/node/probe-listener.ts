import { createServer, type Server } from "node:net";
import type { Logger } from "../util/log.ts";

/**
 * The agent's liveness port: a TCP listener on this node's mesh address that accepts and closes
 * at once, reads nothing, logs nothing. Proxy nodes connect to it every second to tell a dead
 * voter from a live one (node/upstream-watch.ts) — etcd's own client port would answer too, but
 * logs a "rejected connection" line for every connection closed before TLS. Never throws: a
 * port it cannot take is logged once and tried again on the next call.
 */
export class ProbeListener {
  private server: Server | undefined;
  private bound = "";
  private lastError = "";

  constructor(private readonly log: Logger) {}

  /** Listens on [address]:port, moving when either changed. */
  async ensure(address: string, port: number): Promise<void> {
    const want = `[${address}]:${port}`;
    if (this.server && this.bound === want) return;
    this.stop();
    const server = createServer((socket) => socket.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: address, port, exclusive: true }, () => resolve());
      });
      server.on("error", () => undefined);
      this.server = server;
      this.bound = want;
      this.lastError = "";
    } catch (e) {
      server.close();
      const msg = `the agent's liveness port ${want} could not be opened (${(e as Error).message}); proxies will not tell this voter from a dead one before its node record lapses. Free it, or move it with \`raptiformica config set meshnet/agent/port PORT\`.`;
      if (msg !== this.lastError) this.log.warn(msg);
      this.lastError = msg;
    }
  }

  stop(): void {
    this.server?.close();
    this.server = undefined;
    this.bound = "";
  }
}
