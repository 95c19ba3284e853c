import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errorMessage } from "../../util/errors.ts";
import type { Logger } from "../../util/log.ts";
import type { FeedEvent, GraphFeed } from "./feed.ts";

/**
 * The mesh map over HTTP, read-only: the page (the built files in dist/map/), `GET /api/graph`
 * (the graph as JSON) and `GET /api/events` (server-sent events: the graph whenever it changes).
 * Anything but GET and HEAD is refused (405). Requests must name this machine as their Host
 * (127.0.0.1, localhost, [::1] or its mesh address, any port: an SSH tunnel picks its own), so
 * a web page elsewhere cannot read the map through a browser on the operator's machine by
 * pointing a name of its own at 127.0.0.1.
 */

/** The page's files: the only paths served besides the API. */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/map.js": { file: "map.js", type: "text/javascript; charset=utf-8" },
  "/map.css": { file: "map.css", type: "text/css; charset=utf-8" },
};

/** Headers on every answer: no framing, no sniffing, nothing loaded from elsewhere. */
const COMMON_HEADERS = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
  // Cytoscape sets styles on its elements from script: inline styles stay allowed, scripts do not.
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

export interface MapHandlerDeps {
  readonly feed: Pick<GraphFeed, "current" | "subscribe">;
  /** The folder of the built page (index.html, map.js, map.css). */
  readonly staticDir: string;
  /** This member's mesh address, when known: the one Host besides loopback names it answers to. */
  readonly meshAddress: () => string | undefined;
  readonly log: Logger;
  /** At most this many pages follow the map at once (each holds a connection). */
  readonly maxFollowers?: number;
  /** A comment line this often keeps a quiet event stream (and the tunnel under it) open, ms. */
  readonly keepAliveMs?: number;
}

/** The host name of a Host header (`127.0.0.1:4865`, `[200::1]:80`, `localhost`), lowercase, without brackets. Pure. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 1 ? h.slice(1, end) : undefined;
  }
  return h.split(":")[0] || undefined;
}

/** Whether a request naming `host` is one for this machine (see the module comment). Pure. */
export function isOwnHost(host: string | undefined, meshAddress: string | undefined): boolean {
  if (host === undefined) return false;
  return host === "127.0.0.1" || host === "localhost" || host === "::1" || (meshAddress !== undefined && host === meshAddress.toLowerCase());
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, "content-type": type, "content-length": String(Buffer.byteLength(body)), ...extra });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, doc: unknown): void {
  send(res, status, "application/json; charset=utf-8", `${JSON.stringify(doc)}\n`);
}

/** One server-sent event: its name and its data as one line of JSON. */
export function eventText(e: FeedEvent): string {
  return e.type === "graph" ? `event: graph\ndata: ${JSON.stringify(e.graph)}\n\n` : `event: problem\ndata: ${JSON.stringify({ message: e.message })}\n\n`;
}

/**
 * The request handler of the map (see the module comment). Never throws: a failure becomes an
 * answer (500, 503) or a problem event.
 */
export function mapRequestHandler(d: MapHandlerDeps): RequestListener {
  let followers = 0;
  const maxFollowers = d.maxFollowers ?? 32;
  const keepAliveMs = d.keepAliveMs ?? 15_000;

  async function page(res: ServerResponse, f: { file: string; type: string }): Promise<void> {
    let body: Buffer;
    try {
      body = await readFile(join(d.staticDir, f.file));
    } catch (e) {
      d.log.warn(`map: cannot read ${join(d.staticDir, f.file)} (${errorMessage(e)}); this install lacks the built page: \`npm run build\` makes it, \`raptiformica slave\` pushes it.`);
      send(res, 500, "text/plain; charset=utf-8", `The map's page is missing from this member's install (${f.file}).\n`);
      return;
    }
    send(res, 200, f.type, body);
  }

  async function graph(res: ServerResponse): Promise<void> {
    try {
      sendJson(res, 200, await d.feed.current());
    } catch (e) {
      sendJson(res, 503, { error: `The cluster KV does not answer on this member (${errorMessage(e)}); try again, or open the map of another member.` });
    }
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    if (followers >= maxFollowers) {
      send(res, 503, "text/plain; charset=utf-8", `This member already serves the map to ${maxFollowers} pages; close one, or open the map of another member.\n`, { "retry-after": "10" });
      return;
    }
    followers++;
    res.writeHead(200, { ...COMMON_HEADERS, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no", connection: "keep-alive" });
    // The browser reconnects after this long when the stream breaks.
    res.write("retry: 2000\n\n");
    let done = false;
    let unsubscribe: (() => void) | undefined;
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), keepAliveMs);
    const end = () => {
      if (done) return;
      done = true;
      followers--;
      clearInterval(keepAlive);
      unsubscribe?.();
    };
    req.on("close", end);
    res.on("error", end);
    res.on("close", end);
    try {
      unsubscribe = d.feed.subscribe((e) => {
        if (!done) res.write(eventText(e));
      });
    } catch (e) {
      res.end(eventText({ type: "problem", message: `The map cannot follow the cluster here (${errorMessage(e)}).` }));
      end();
    }
    if (done) unsubscribe?.();
  }

  return (req, res) => {
    res.on("error", () => undefined);
    const url = new URL(req.url ?? "/", "http://map.invalid");
    if (!isOwnHost(hostName(req.headers.host), d.meshAddress())) {
      send(res, 421, "text/plain; charset=utf-8", "This server answers only requests for 127.0.0.1, localhost or its mesh address.\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain; charset=utf-8", "The mesh map is read-only: GET only.\n", { allow: "GET, HEAD" });
      return;
    }
    const f = FILES[url.pathname];
    if (f) void page(res, f);
    else if (url.pathname === "/api/graph") void graph(res);
    else if (url.pathname === "/api/events" && req.method === "GET") events(req, res);
    else send(res, 404, "text/plain; charset=utf-8", "Not found. The map is at /, its data at /api/graph and /api/events.\n");
  };
}

/**
 * The map's listening sockets: one HTTP server per address, all with one handler. Never
 * throws: an address it cannot take (the port is busy, the mesh address is not up yet) is
 * logged once per reason and tried again on the next `ensure`.
 */
export class MapListeners {
  private readonly servers = new Map<string, Server>();
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly handler: RequestListener,
    private readonly log: Logger,
  ) {}

  /** The addresses listened on now, as `host:port` (`[v6]:port`). */
  get bound(): string[] {
    return [...this.servers.keys()];
  }

  /** Listens on each of `addresses` at `port`, and on nothing else. */
  async ensure(addresses: readonly string[], port: number): Promise<void> {
    const want = new Map(addresses.map((a) => [a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`, a]));
    for (const [where, server] of this.servers) {
      if (want.has(where)) continue;
      server.close();
      server.closeAllConnections?.();
      this.servers.delete(where);
    }
    for (const [where, host] of want) {
      if (this.servers.has(where)) continue;
      const server = createServer(this.handler);
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen({ host, port, exclusive: true }, () => resolve());
        });
      } catch (e) {
        server.close();
        const why = (e as NodeJS.ErrnoException).code === "EADDRINUSE" ? "the port is taken by another program" : errorMessage(e);
        const msg = `the mesh map cannot listen on ${where} (${why}); trying again every few seconds. Free the port, or move the map with \`raptiformica config set meshnet/map/port PORT\`.`;
        if (this.reported.get(where) !== msg) this.log.warn(msg);
        this.reported.set(where, msg);
        continue;
      }
      server.on("error", (e) => this.log.debug(`map: ${where}: ${errorMessage(e)}`));
      this.servers.set(where, server);
      if (this.reported.has(where)) this.log.info(`the mesh map listens on ${where} now`);
      this.reported.delete(where);
    }
  }

  /** Closes every listener and the connections they hold (event streams). */
  stop(): void {
    for (const server of this.servers.values()) {
      server.close();
      server.closeAllConnections?.();
    }
    this.servers.clear();
  }
}
