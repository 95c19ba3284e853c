/**
 * One cluster across Debian releases: a Debian 12 (bookworm) and a Debian 13 (trixie) member,
 * both spawned the normal way (`raptiformica spawn --compute-type docker`, the release chosen
 * with RAPTIFORMICA_DOCKER_RELEASE), both on Yggdrasil 0.5 and etcd 3.5 — bookworm's through the
 * headless bootstrap's apt pins (yggdrasil from bookworm-backports, etcd-server/etcd-client from
 * trixie, nothing else from either) — so they peer, form one etcd cluster and share the KV.
 *
 * Cost (2 cores): about 40 s when the images exist (the `package` runs in before() are then
 * cached rebuilds, under a second each). Cold, with no image registry reachable: the trixie base
 * is debootstrapped (once, kept as debian:trixie-slim) and both releases' sshd and packaged
 * images are built — about 70 s for trixie and 20 s for bookworm with a fast Debian mirror
 * (plus the bookworm base's debootstrap, about a minute, when the docker e2e test has not made
 * it yet). The pin check runs `apt-get update` in the bookworm member, so it needs the mirror
 * too, as the image builds do.
 * Needs a working docker daemon (`bash scripts/setup-docker.sh`); skipped, saying why, without.
 * Every container this test starts carries the run's label and is removed in after().
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lab/index.ts";
import { DockerOperator, dockerOk, dockerSkipReason, packagedImage } from "../helpers/docker.ts";

const skip = dockerSkipReason();
const RF = "/usr/etc/raptiformica/bin/raptiformica";
const RELEASES = ["bookworm", "trixie"] as const;
type Release = (typeof RELEASES)[number];

interface Member {
  release: Release;
  uuid: string;
  host: string;
  meshAddress: string;
}

const log = (m: string) => process.stderr.write(`# ${m}\n`);

describe("one cluster across Debian 12 and Debian 13", { skip, timeout: 1_800_000 }, () => {
  let op: DockerOperator;
  const members: Member[] = [];
  const release = (r: Release) => ({ RAPTIFORMICA_DOCKER_RELEASE: r });
  const member = (r: Release) => members.find((m) => m.release === r)!;
  const sh = (m: Member, script: string) => op.onNode(m.host, ["sh", "-c", script], 120_000);

  before(async () => {
    op = new DockerOperator();
    for (const r of RELEASES) {
      const t0 = performance.now();
      const p = await op.rf(["package", "--compute-type", "docker"], 1_500_000, release(r));
      assert.equal(p.code, 0, `package --compute-type docker (${r}) failed:\n${p.stderr}`);
      log(`package --compute-type docker (${r}): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      await dockerOk(["image", "inspect", packagedImage(r)]);
    }
  });

  after(async () => {
    if (!op) return;
    const d = await op.rf(["destroy"], 300_000);
    if (d.code !== 0) log(`destroy failed: ${d.stderr}`);
    await op.cleanup();
  });

  it("a bookworm and a trixie spawn: both alive in members, each a container of its release's image", async () => {
    for (const r of RELEASES) {
      const t0 = performance.now();
      const s = await op.rf(["spawn", "--compute-type", "docker"], 300_000, release(r));
      assert.equal(s.code, 0, `spawn (${r}): ${s.stderr}`);
      const [uuid, host, , meshAddress] = s.stdout.trim().split(" ");
      assert.match(meshAddress ?? "", /^2[0-9a-f]{2}:/, s.stdout);
      const m: Member = { release: r, uuid: uuid!, host: host!, meshAddress: meshAddress! };
      await waitFor(`${r} member ${m.host} alive in members`, async () => (await op.members()).some((x) => x.meshAddress === m.meshAddress && x.status === "alive"), {
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      log(`spawn ${r} → alive in members: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      members.push(m);
    }
    const all = await op.members();
    assert.equal(all.filter((x) => x.status === "alive").length, 2, JSON.stringify(all));

    for (const m of members) {
      const id = readFileSync(join(op.cache, "var", "machines", "docker", "headless", m.uuid, "container_id"), "utf8").trim();
      assert.equal(await dockerOk(["inspect", "-f", "{{.Config.Image}}", id]), packagedImage(m.release));
      const os = sh(m, ". /etc/os-release && echo $VERSION_CODENAME");
      assert.equal(os.stdout.trim(), m.release, `${m.host}: ${os.stderr}`);
    }
  });

  it("both run Yggdrasil 0.5.x and etcd 3.5.x (3.5.13 or newer)", () => {
    assert.equal(members.length, 2, "both members were spawned");
    for (const m of members) {
      // What raptiformica detected in the binary it runs.
      const idr = op.onNode(m.host, [RF, "identity", "--json"]);
      assert.equal(idr.code, 0, idr.stderr);
      const ident = JSON.parse(idr.stdout) as { yggdrasilMajor?: string; yggdrasilVersion?: string };
      assert.equal(ident.yggdrasilMajor, "0.5", `${m.release}: ${idr.stdout}`);
      assert.match(ident.yggdrasilVersion ?? "", /^0\.5\.\d+/, `${m.release}: ${idr.stdout}`);
      // The etcd it runs (the only one installed) and its client.
      const etcd = sh(m, "etcd --version | sed -n 's/^etcd Version: //p'; etcdctl version | sed -n 's/^etcdctl version: //p'; pgrep -x etcd >/dev/null && echo running");
      const [server, client, running] = etcd.stdout.trim().split("\n");
      for (const v of [server, client]) {
        const [maj, min, patch] = (v ?? "").split(".").map(Number);
        assert.ok(maj === 3 && min === 5 && (patch ?? 0) >= 13, `${m.release}: etcd/etcdctl ${v}, want 3.5.13+ (${etcd.stdout} ${etcd.stderr})`);
      }
      assert.equal(running, "running", `${m.release}: no etcd process`);
      log(`${m.release}: yggdrasil ${ident.yggdrasilVersion}, etcd ${server}`);
    }
  });

  it("a key written on the bookworm member is read on the trixie member, and back", async () => {
    assert.equal(members.length, 2, "both members were spawned");
    const [a, b] = [member("bookworm"), member("trixie")];
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const key = `distributions/written/on/${from.release}`;
      const set = op.onNode(from.host, [RF, "config", "set", key, from.release]);
      assert.equal(set.code, 0, set.stderr);
      await waitFor(`${to.release} reads the value written on ${from.release}`, () => op.onNode(to.host, [RF, "config", "get", key]).stdout.trim() === from.release, {
        timeoutMs: 30_000,
        intervalMs: 500,
      });
    }
    // And over the mesh itself.
    assert.equal(op.onNode(a.host, ["ping", "-6", "-c1", "-W3", b.meshAddress]).code, 0, "bookworm pings trixie's mesh address");
  });

  it("bookworm's apt pins: only yggdrasil from bookworm-backports and etcd-server/etcd-client from trixie, nothing else from there", () => {
    assert.equal(members.length, 2, "both members were spawned");
    const m = member("bookworm");
    const upd = sh(m, "apt-get update -qq 2>&1 && echo updated");
    assert.match(upd.stdout, /updated/, `apt-get update in the bookworm member: ${upd.stdout} ${upd.stderr}`);
    assert.doesNotMatch(upd.stdout, /^(W|E):/m, "apt warns about the pin files");
    // Installed packages whose installed version only trixie ("stable") or bookworm-backports
    // ("oldstable-backports") has, not bookworm itself ("oldstable", its -security, -updates).
    const foreign = sh(
      m,
      "apt list --installed 2>/dev/null | awk -F'[/ ]' 'NR > 1 { n = split($2, a, \",\"); ours = 0; theirs = 0; " +
        "for (i = 1; i <= n; i++) { if (a[i] ~ /^oldstable(-security|-updates)?$/) ours = 1; else if (a[i] ~ /^stable/ || a[i] ~ /backports/) theirs = 1 } " +
        "if (theirs && !ours) print $1 }'",
    );
    assert.deepEqual(foreign.stdout.trim().split("\n").sort(), ["etcd-client", "etcd-server", "yggdrasil"], foreign.stderr);
    // An upgrade of the whole host takes nothing from there either.
    const upgrade = sh(m, "apt-get -s dist-upgrade | grep '^Inst' | grep -E 'backports|Debian:13' || true");
    assert.equal(upgrade.stdout.trim(), "", `dist-upgrade would take from backports/trixie:\n${upgrade.stdout}`);
    const policy = sh(m, "apt-cache policy yggdrasil etcd-server nodejs | awk '/^[a-z]/ {p=$1} /Candidate:/ {print p, $2}'");
    const candidates = Object.fromEntries(policy.stdout.trim().split("\n").map((l) => l.split(" ")));
    assert.match(candidates["yggdrasil:"] ?? "", /^0\.5\.\d+.*~bpo12/, policy.stdout);
    assert.match(candidates["etcd-server:"] ?? "", /^3\.5\./, policy.stdout);
    assert.match(candidates["nodejs:"] ?? "", /deb12/, `nodejs stays bookworm's: ${policy.stdout}`);
  });
});
