/**
 * A running cluster moved from Yggdrasil 0.4 to 0.5 with one command: three Debian 12 docker
 * members spawned on 0.4 (RAPTIFORMICA_YGGDRASIL_MAJOR=0.4: the packaged image then has
 * bookworm's own 0.4, and the bootstrap keeps it), then `raptiformica migrate-mesh` from the
 * operator. It installs 0.5 on every member (the headless bootstrap, through its
 * bookworm-backports pin) while the 0.4 mesh keeps running, then switches all members at once.
 * Afterwards: every member runs 0.5 with the mesh address it had, records 0.5, is alive, the
 * KV kept what it held, every member reaches every other over the mesh, and a new 0.5 member
 * joins. The time from the switch until every member was alive again is printed.
 *
 * Cost (2 cores): about 2 min with the images built: the 0.4 image's `package` (cached after
 * the first run; the first builds it, about 40 s with a fast Debian mirror), three spawns, the
 * staging (`apt-get update` and the yggdrasil install in each member, from the Debian mirror,
 * as image builds do), the switch. Needs docker (`bash scripts/setup-docker.sh`); skipped,
 * saying why, without. Every container carries the run's label and is removed in after().
 */
import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { DockerOperator, dockerOk, dockerSkipReason } from "../helpers/docker.ts";

const skip = dockerSkipReason();
const RF = "/usr/etc/raptiformica/bin/raptiformica";
const OLD = { RAPTIFORMICA_YGGDRASIL_MAJOR: "0.4" };
const YGGCTL = "yggdrasilctl -endpoint unix:///root/.raptiformica.d/node/run/ygg.sock -json getSelf";

interface Member {
  uuid: string;
  host: string;
  meshAddress: string;
}

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

describe("migrate-mesh: a running 0.4 cluster moves to Yggdrasil 0.5", { skip, timeout: 1_200_000 }, () => {
  let op: DockerOperator;
  const members: Member[] = [];
  const sh = (m: Member, script: string) => op.onNode(m.host, ["sh", "-c", script], 120_000);
  /** The Yggdrasil build a member's running yggdrasil reports ("0.5.12"; Debian's 0.4 says "unknown"). */
  const running = (m: Member) => {
    const r = sh(m, YGGCTL);
    assert.equal(r.code, 0, `getSelf on ${m.host}: ${r.stderr}`);
    return JSON.parse(r.stdout) as { build_version?: string; address: string; key?: string };
  };
  const majors = async () => {
    const shown = await op.rf(["config", "show", "meshnet/neighbours", "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    const m = JSON.parse(shown.stdout) as Record<string, string>;
    return Object.entries(m).filter(([k]) => k.endsWith("/yggdrasil_major")).map(([, v]) => v);
  };
  const aliveCount = async () => (await op.members()).filter((x) => x.status === "alive").length;

  before(async () => {
    op = new DockerOperator();
    const t0 = performance.now();
    const p = await op.rf(["package", "--compute-type", "docker"], 1_500_000, OLD);
    assert.equal(p.code, 0, `package (Yggdrasil 0.4) failed:\n${p.stderr}`);
    log(`package --compute-type docker (Yggdrasil 0.4 image): ${secs(t0)}`);
    await dockerOk(["image", "inspect", "raptiformica-docker:headless-bookworm-yggdrasil0.4"]);
  });

  after(async () => {
    if (op) {
      const d = await op.rf(["destroy"], 300_000);
      if (d.code !== 0) log(`destroy failed: ${d.stderr}`);
      await op.cleanup();
    }
  });

  it("three members spawned with RAPTIFORMICA_YGGDRASIL_MAJOR=0.4 form a cluster on 0.4", async () => {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await op.rf(["spawn", "--compute-type", "docker"], 300_000, OLD);
      assert.equal(r.code, 0, r.stderr);
      const [uuid, host, , meshAddress] = r.stdout.trim().split(" ");
      const m = { uuid: uuid!, host: host!, meshAddress: meshAddress! };
      await waitFor(`${m.host} alive`, async () => (await op.members()).some((x) => x.meshAddress === m.meshAddress && x.status === "alive"), { timeoutMs: 90_000, intervalMs: 500 });
      members.push(m);
      log(`spawn ${i + 1} (0.4) → alive: ${secs(t0)}`);
    }
    for (const m of members) assert.notEqual(running(m).build_version?.startsWith("0.5"), true, `${m.host} runs 0.4`);
    assert.deepEqual(await majors(), ["0.4", "0.4", "0.4"]);
    const set = await op.rf(["config", "set", "app/before", "kept"]);
    assert.equal(set.code, 0, set.stderr);
  });

  it("migrate-mesh installs 0.5 everywhere, switches, and every member is back on 0.5 with its address", async () => {
    assert.equal(members.length, 3, "the cluster was spawned");
    const t0 = performance.now();
    const r = await op.rf(["migrate-mesh", "--json"], 900_000);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { to: string; already: boolean; members: unknown[]; backAfterMs: number };
    assert.equal(report.to, "0.5");
    assert.equal(report.already, false);
    assert.equal(report.members.length, 3);
    log(`migrate-mesh: ${secs(t0)} in all; every member alive again ${(report.backAfterMs / 1000).toFixed(1)} s after the switch`);

    for (const m of members) {
      const self = running(m);
      assert.match(self.build_version ?? "", /^0\.5\./, `${m.host} runs 0.5 now`);
      assert.equal(self.address, m.meshAddress, `${m.host} kept its mesh address`);
    }
    assert.deepEqual(await majors(), ["0.5", "0.5", "0.5"]);
    assert.equal(await aliveCount(), 3);
    const got = await op.rf(["config", "get", "app/before"]);
    assert.equal(got.stdout.trim(), "kept", got.stderr);
    for (const a of members) {
      for (const b of members) {
        if (a === b) continue;
        await waitFor(`${a.host} pings ${b.meshAddress}`, () => op.onNode(a.host, ["ping", "-6", "-c1", "-W3", b.meshAddress]).code === 0, { timeoutMs: 30_000, intervalMs: 500 });
      }
    }
    // A key written after the switch is read on every member.
    assert.equal((await op.rf(["config", "set", "app/after", "written"])).code, 0);
    for (const m of members) assert.equal(op.onNode(m.host, [RF, "config", "get", "app/after"]).stdout.trim(), "written");
  });

  it("run again, it has nothing to do; a new member (0.5, the default) joins the migrated cluster", async () => {
    assert.equal(members.length, 3, "the cluster was spawned");
    const again = await op.rf(["migrate-mesh"], 300_000);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already runs Yggdrasil 0\.5/);
    const r = await op.rf(["spawn", "--compute-type", "docker"], 300_000);
    assert.equal(r.code, 0, r.stderr);
    const [, host, , meshAddress] = r.stdout.trim().split(" ");
    await waitFor(`${host} alive`, async () => (await op.members()).some((x) => x.meshAddress === meshAddress && x.status === "alive"), { timeoutMs: 90_000, intervalMs: 500 });
    assert.equal(await aliveCount(), 4);
  });
});
