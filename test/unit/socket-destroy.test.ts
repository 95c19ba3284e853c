import assert from "node:assert/strict";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { connectionFilter, destroySockets, farEndFilter, localEndFilter, ssAddress } from "../../src/mesh/socket-destroy.ts";
import { run } from "../../src/util/exec.ts";
import { createLogger } from "../../src/util/log.ts";

describe("ss filters and socket destroy (mesh/socket-destroy.ts)", () => {
  it("addresses as ss takes them: IPv6 bracketed and without its scope, IPv4 as is", () => {
    assert.equal(ssAddress("10.0.0.2"), "10.0.0.2");
    assert.equal(ssAddress("fd00::1"), "[fd00::1]");
    assert.equal(ssAddress("[fd00::1]"), "[fd00::1]");
    assert.equal(ssAddress("fe80::1%eth0"), "[fe80::1]");
    assert.deepEqual(connectionFilter({ local: { host: "fd00::1", port: 4863 }, peer: { host: "10.0.0.2", port: 40000 } }), [
      "state",
      "established",
      "src",
      "[fd00::1]",
      "sport",
      "=",
      ":4863",
      "dst",
      "10.0.0.2",
      "dport",
      "=",
      ":40000",
    ]);
  });

  // Real connections on loopback: each filter must select exactly the socket it names, for IPv4,
  // IPv6 and an IPv4 client on a dual-stack listener (the kernel shows it v4-mapped).
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  after(() => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  });

  /** A listener on `listenHost` and one client from `connectHost`: the server port and the client's local port. */
  async function pair(listenHost: string, connectHost: string): Promise<{ serverPort: number; clientPort: number; client: Socket }> {
    const server = createServer((s) => void sockets.push(s.on("error", () => undefined)));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
    const serverPort = (server.address() as { port: number }).port;
    const client = createConnection({ host: connectHost, port: serverPort });
    sockets.push(client);
    await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject));
    return { serverPort, clientPort: client.localPort!, client };
  }

  /** The established connections `ss` lists for `filter`, as "local peer" pairs. */
  async function listed(filter: readonly string[]): Promise<string[]> {
    const r = await run("ss", ["-tnH", ...(filter[0] === "state" ? [] : ["state", "established"]), ...filter]);
    assert.equal(r.exitCode, 0, `ss ${filter.join(" ")}: ${r.stderr}`);
    return r.stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => l.trim().split(/\s+/).slice(2, 4).join(" "));
  }

  const hasSs = async () => (await run("ss", ["-V"])).exitCode === 0;
  for (const [what, listenHost, connectHost] of [
    ["IPv4", "127.0.0.1", "127.0.0.1"],
    ["IPv6", "::1", "::1"],
    ["an IPv4 client of a dual-stack listener", "::", "127.0.0.1"],
  ] as const) {
    it(`on a real kernel, ${what}: the far-end, local-end and connection filters each select that connection`, async (t) => {
      if (!(await hasSs())) return t.skip("needs ss (iproute2)");
      const { serverPort, clientPort } = await pair(listenHost, connectHost);
      const far = await listed(farEndFilter({ host: connectHost, port: serverPort }));
      assert.equal(far.length, 1, `dst ${connectHost}:${serverPort} → ${JSON.stringify(far)}`);
      assert.match(far[0]!, new RegExp(`:${clientPort} .*:${serverPort}$`));
      const local = await listed(localEndFilter(connectHost, serverPort));
      assert.equal(local.length, 1, `src ${connectHost}:${serverPort} → ${JSON.stringify(local)}`);
      assert.match(local[0]!, new RegExp(`:${serverPort} .*:${clientPort}$`));
      const one = await listed(connectionFilter({ local: { host: connectHost, port: clientPort }, peer: { host: connectHost, port: serverPort } }));
      assert.equal(one.length, 1, JSON.stringify(one));
    });
  }

  const root = process.getuid?.() === 0;
  it("on a real kernel: destroySockets closes the IPv6 connection it names and tells its process", { skip: root ? false : "needs root (CAP_NET_ADMIN for ss -K)" }, async (t) => {
    if (!(await hasSs())) return t.skip("needs ss (iproute2)");
    const { serverPort, client } = await pair("::1", "::1");
    const closed = new Promise<string>((resolve) => client.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e))).once("close", () => resolve("closed")));
    assert.equal(await destroySockets(farEndFilter({ host: "::1", port: serverPort }), createLogger(false, () => undefined)), true);
    assert.equal(await closed, "ECONNABORTED");
    assert.deepEqual(await listed(farEndFilter({ host: "::1", port: serverPort })), []);
  });
});
