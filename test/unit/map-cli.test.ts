import { strict as assert } from "node:assert";
import { createServer, type AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { browserCommand } from "../../src/cli/map.ts";
import { localPort, tunnelArgv } from "../../src/ops/map/tunnel.ts";

const settings = { knownHosts: "/c/known_hosts", stateDir: "/c/ssh", identities: [] };

describe("raptiformica map", () => {
  it("forwards 127.0.0.1 only, to the member's 127.0.0.1, failing instead of running on without the forward", () => {
    const argv = tunnelArgv(settings, { host: "2001:db8::5", port: 2222, via: [{ host: "jump", port: 22 }] }, 4865, 5000);
    assert.deepEqual(argv.slice(0, 7), ["-N", "-o", "ExitOnForwardFailure=yes", "-o", "ControlPath=none", "-L", "127.0.0.1:4865:127.0.0.1:5000"]);
    assert.deepEqual(argv.slice(7), ["-F", "/c/ssh/ssh_config", "-p", "2222", "-J", "root@jump:22", "root@2001:db8::5"]);
  });

  it("takes the map's port when free here, else a free one; a port asked for that is taken is refused", async () => {
    const busy = createServer();
    const port = await new Promise<number>((r) => busy.listen({ host: "127.0.0.1", port: 0 }, () => r((busy.address() as AddressInfo).port)));
    try {
      const other = await localPort(port, false);
      assert.notEqual(other, port);
      assert.ok(other > 0);
      await assert.rejects(localPort(port, true), new RegExp(`Local port ${port} is taken on this machine: pick another with \`raptiformica map --port N\``));
    } finally {
      await new Promise((r) => busy.close(r));
    }
    assert.equal(await localPort(port, true), port);
  });

  it("opens a browser only where there is one, and says why not", () => {
    const all = () => true;
    assert.deepEqual(browserCommand("darwin", {}, all), { argv0: "open" });
    assert.deepEqual(browserCommand("linux", { DISPLAY: ":0" }, all), { argv0: "xdg-open" });
    assert.deepEqual(browserCommand("linux", { WAYLAND_DISPLAY: "wayland-0" }, all), { argv0: "xdg-open" });
    assert.match("why" in browserCommand("linux", {}, all) ? (browserCommand("linux", {}, all) as { why: string }).why : "", /no graphical display/);
    assert.match((browserCommand("linux", { DISPLAY: ":0" }, () => false) as { why: string }).why, /xdg-open` is not on PATH/);
  });
});
