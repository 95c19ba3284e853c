/**
 * One real etcd on loopback (plain HTTP, its own data dir) for tests of the KV code against the
 * real server, and a TCP relay in front of it that can cut its connections the way a restarting
 * grpc-proxy or a dying voter does.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { Etcd3 } from "etcd3";

/** Whether `etcd` is on the PATH (tests skip with this reason when it is not). */
export const haveEtcd = spawnSync("sh", ["-c", "command -v etcd"]).status === 0;

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface SingleEtcd {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Stops etcd (SIGTERM, waits for its exit) and removes its data dir. */
  stop(): Promise<void>;
}

/**
 * Starts etcd with `extraArgs` and waits (≤ 15 s) until it answers a read.
 * @throws the last read's error when it does not answer in time.
 */
export async function startEtcd(extraArgs: readonly string[] = []): Promise<SingleEtcd> {
  const dir = mkdtempSync(join(tmpdir(), "rf-etcd-"));
  const [cp, pp] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${cp}`;
  const etcd: ChildProcess = spawn(
    "etcd",
    [
      "--name", "t",
      "--data-dir", join(dir, "data"),
      "--listen-client-urls", url,
      "--advertise-client-urls", url,
      "--listen-peer-urls", `http://127.0.0.1:${pp}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${pp}`,
      "--initial-cluster", `t=http://127.0.0.1:${pp}`,
      ...extraArgs,
    ],
    { stdio: "ignore" },
  );
  const stop = async () => {
    if (etcd.pid !== undefined && etcd.exitCode === null) {
      const exited = new Promise((r) => etcd.once("exit", r));
      etcd.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const probe = new Etcd3({ hosts: url });
  try {
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        await probe.get("probe").string();
        break;
      } catch (e) {
        if (Date.now() > until) {
          await stop();
          throw e;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    probe.close();
  }
  return { url, stop };
}

/** What the relay does with the next chunk a client sends once armed. */
export type CutMode = "before-forwarding" | "after-forwarding";

/**
 * A TCP relay on loopback to `target` (`host:port`). `cutNext(mode)` arms it: the next chunk a
 * client sends cuts that connection (both sides destroyed), either before the chunk reaches the
 * server (the request is lost) or just after (the server acts on it, the answer is lost).
 */
export class CuttingRelay {
  private armed: CutMode | undefined;
  private readonly sockets = new Set<Socket>();
  /** How many connections were cut so far. */
  cuts = 0;

  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(target: string): Promise<CuttingRelay> {
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const relay = new CuttingRelay(server, `http://127.0.0.1:${(server.address() as { port: number }).port}`);
    server.on("connection", (client) => relay.relay(client, host, port));
    return relay;
  }

  cutNext(mode: CutMode): void {
    this.armed = mode;
  }

  private relay(client: Socket, host: string, port: number): void {
    const upstream = connect(port, host);
    this.sockets.add(client).add(upstream);
    const cut = () => {
      this.cuts += 1;
      client.destroy();
      upstream.destroy();
    };
    // Once a request went through to be cut after, the server's answers are held back.
    let muted = false;
    client.on("data", (chunk) => {
      const mode = this.armed;
      if (mode === undefined) return void upstream.write(chunk);
      this.armed = undefined;
      if (mode === "before-forwarding") return cut();
      muted = true;
      upstream.write(chunk, () => setTimeout(cut, 300));
    });
    upstream.on("data", (chunk) => muted || client.write(chunk));
    for (const s of [client, upstream]) {
      s.on("error", () => cut());
      s.on("close", () => {
        this.sockets.delete(s);
        (s === client ? upstream : client).destroy();
      });
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/**
 * One real etcd for the describe block this is called in: started (with `extraArgs`) before its
 * tests, stopped after them. `client` is a client of it, there once the block's tests run.
 * @throws Error (a bug in the test) when `client` is read before the etcd started.
 */
export function etcdForSuite(extraArgs: readonly string[] = []): { readonly client: Etcd3 } {
  let etcd: SingleEtcd | undefined;
  let client: Etcd3 | undefined;
  before(async () => {
    etcd = await startEtcd(extraArgs);
    client = new Etcd3({ hosts: etcd.url });
  });
  after(async () => {
    client?.close();
    await etcd?.stop();
  });
  return {
    get client(): Etcd3 {
      if (!client) throw new Error("etcdForSuite: the suite's etcd has not started");
      return client;
    },
  };
}
