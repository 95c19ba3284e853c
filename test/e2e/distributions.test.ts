/**
 * One cluster across Debian releases: two Debian 12 (bookworm) and two Debian 13 (trixie)
 * members, all spawned the normal way (`raptiformica spawn --compute-type docker`, the release
 * chosen with RAPTIFORMICA_DOCKER_RELEASE), all on Yggdrasil 0.5 and etcd 3.5 — bookworm's
 * through the headless bootstrap's apt pins (yggdrasil from bookworm-backports,
 * etcd-server/etcd-client from trixie, nothing else from either) — so they peer, form one etcd
 * cluster (3 voters of 4, the default max_voters being 5), share the KV, reach each other over
 * the mesh, and replace a voter that dies.
 *
 * Cost (2 cores): about 90 s when the images exist (the `package` runs in before() are then
 * cached rebuilds, under a second each; each spawn about 6–10 s, the voter replacement about
 * 20 s). Cold, with no image registry reachable: the trixie base is debootstrapped (once, kept
 * as debian:trixie-slim) and both releases' sshd and packaged images are built — about 70 s for
 * trixie and 20 s for bookworm with a fast Debian mirror (plus the bookworm base's debootstrap,
 * about a minute, when the docker e2e test has not made it yet). The pin check runs
 * `apt-get update` in a bookworm member, so it needs the mirror too, as the image builds do.
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
/** The spawn order: the releases alternate, so both are in the cluster from its second member on. */
const SPAWNS: readonly Release[] = ["bookworm", "trixie", "bookworm", "trixie"];

interface Member {
  release: Release;
  uuid: string;
  host: string;
  meshAddress: string;
}

interface Listed {
  name: string;
  meshAddress: string;
  status: string;
  role?: string;
}

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const isVoter = (x: Listed) => x.status === "alive" && (x.role === "voter" || x.role === "leader");

describe("one cluster of two Debian 12 and two Debian 13 members", { skip, timeout: 900_000 }, () => {
  let op: DockerOperator;
  const members: Member[] = [];
  /** Members not killed by this test (the voter test kills one). */
  const live = () => members.filter((m) => !killed.has(m.uuid));
  const killed = new Set<string>();
  const release = (r: Release) => ({ RAPTIFORMICA_DOCKER_RELEASE: r });
  const sh = (m: Member, script: string) => op.onNode(m.host, ["sh", "-c", script], 120_000);
  const containerOf = (m: Member) => readFileSync(join(op.cache, "var", "machines", "docker", "headless", m.uuid, "container_id"), "utf8").trim();
  /** `members --json` as member `m` answers it. */
  const membersOn = (m: Member): Listed[] => {
    const r = op.onNode(m.host, [RF, "members", "--json"]);
    if (r.code !== 0) throw new Error(`members on ${m.host} exited ${r.code}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { members: Listed[] }).members;
  };
  const spawned = () => assert.equal(members.length, SPAWNS.length, "all members were spawned");
  /** `p`, or its error followed by what every live member was doing (DockerOperator.diagnose). */
  const withDiagnosis = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${(await Promise.all(live().map((m) => op.diagnose(m.host)))).join("\n")}`);
    }
  };

  before(async () => {
    op = new DockerOperator();
    for (const r of RELEASES) {
      const t0 = performance.now();
      const p = await op.rf(["package", "--compute-type", "docker"], 1_500_000, release(r));
      assert.equal(p.code, 0, `package --compute-type docker (${r}) failed:\n${p.stderr}`);
      log(`package --compute-type docker (${r}): ${secs(t0)}`);
      await dockerOk(["image", "inspect", packagedImage(r)]);
    }
  });

  after(async () => {
    if (!op) return;
    const d = await op.rf(["destroy"], 300_000);
    if (d.code !== 0) log(`destroy failed: ${d.stderr}`);
    await op.cleanup();
  });

  it("two bookworm and two trixie spawns: all 4 alive in members, each a container of its release's image", async () => {
    const t00 = performance.now();
    for (const r of SPAWNS) {
      const t0 = performance.now();
      const s = await op.rf(["spawn", "--compute-type", "docker"], 300_000, release(r));
      const spawnSecs = secs(t0);
      assert.equal(s.code, 0, `spawn (${r}): ${s.stderr}`);
      const [uuid, host, , meshAddress] = s.stdout.trim().split(" ");
      assert.match(meshAddress ?? "", /^2[0-9a-f]{2}:/, s.stdout);
      const m: Member = { release: r, uuid: uuid!, host: host!, meshAddress: meshAddress! };
      await waitFor(`${r} member ${m.host} alive in members`, async () => (await op.members()).some((x) => x.meshAddress === m.meshAddress && x.status === "alive"), {
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      members.push(m);
      log(`spawn ${r} (${members.length}) → alive in members: ${secs(t0)} (the spawn command ${spawnSecs})`);
      // Slow, not failed: what every member was doing, for whoever reads the log.
      if (performance.now() - t0 > 30_000) log(`slow spawn; the members now:\n${(await Promise.all(live().map((x) => op.diagnose(x.host, 40)))).join("\n")}\n==== the spawn's output:\n${s.stderr}`);
    }
    log(`4 spawns: ${secs(t00)}`);
    const all = await op.members();
    assert.deepEqual(all.filter((x) => x.status === "alive").map((x) => x.meshAddress).sort(), members.map((m) => m.meshAddress).sort(), JSON.stringify(all));

    for (const m of members) {
      assert.equal(await dockerOk(["inspect", "-f", "{{.Config.Image}}", containerOf(m)]), packagedImage(m.release));
      const os = sh(m, ". /etc/os-release && echo $VERSION_CODENAME");
      assert.equal(os.stdout.trim(), m.release, `${m.host}: ${os.stderr}`);
    }
  });

  it("all run Yggdrasil 0.5.x and etcd 3.5.x (3.5.13 or newer)", async () => {
    spawned();
    for (const m of members) {
      // What raptiformica detected in the binary it runs.
      const idr = op.onNode(m.host, [RF, "identity", "--json"]);
      assert.equal(idr.code, 0, idr.stderr);
      const ident = JSON.parse(idr.stdout) as { yggdrasilMajor?: string; yggdrasilVersion?: string };
      assert.equal(ident.yggdrasilMajor, "0.5", `${m.release}: ${idr.stdout}`);
      assert.match(ident.yggdrasilVersion ?? "", /^0\.5\.\d+/, `${m.release}: ${idr.stdout}`);
      // The etcd it runs (the only one installed) and its client.
      const etcd = sh(m, "etcd --version | sed -n 's/^etcd Version: //p'; etcdctl version | sed -n 's/^etcdctl version: //p'");
      const [server, client] = etcd.stdout.trim().split("\n");
      for (const v of [server, client]) {
        const [maj, min, patch] = (v ?? "").split(".").map(Number);
        assert.ok(maj === 3 && min === 5 && (patch ?? 0) >= 13, `${m.release}: etcd/etcdctl ${v}, want 3.5.13+ (${etcd.stdout} ${etcd.stderr})`);
      }
      // A proxy member's grpc-proxy (the etcd binary too) is restarted when its upstreams change,
      // as they do right after the last spawn (CI once looked in that moment): bounded at 30 s.
      await waitFor(`${m.release} (${m.host}): an etcd process`, () => sh(m, "pgrep -x etcd >/dev/null && echo running").stdout.trim() === "running", { timeoutMs: 30_000, intervalMs: 500 });
      log(`${m.host} (${m.release}): yggdrasil ${ident.yggdrasilVersion}, etcd ${server}`);
    }
  });

  it("a key written on each member is read on every other", async () => {
    spawned();
    const t0 = performance.now();
    for (const [i, from] of members.entries()) {
      const key = `distributions/written/on/${i}-${from.release}`;
      const set = op.onNode(from.host, [RF, "config", "set", key, from.uuid]);
      assert.equal(set.code, 0, set.stderr);
      for (const to of members.filter((m) => m !== from)) {
        await withDiagnosis(
          waitFor(`${to.host} (${to.release}) reads ${key}`, () => op.onNode(to.host, [RF, "config", "get", key]).stdout.trim() === from.uuid, {
            timeoutMs: 30_000,
            intervalMs: 500,
          }),
        );
      }
    }
    log(`4 keys, each read on the 3 others: ${secs(t0)}`);
  });

  it("every member reaches every other's mesh address (ping6 over the mesh)", async () => {
    spawned();
    const t0 = performance.now();
    const failed: string[] = [];
    // One SSH session per member, its pings in parallel; -w bounds each to 10 s and ends it at
    // the first reply (a route the mesh has not looked up yet takes a moment).
    await Promise.all(
      members.map(async (from) => {
        const others = members.filter((m) => m !== from).map((m) => m.meshAddress);
        const script = `for a in ${others.join(" ")}; do (ping -6 -n -c1 -w10 "$a" >/dev/null 2>&1 && echo "ok $a" || echo "unreachable $a") & done; wait`;
        const out = (await op.onNodeAsync(from.host, ["sh", "-c", script], 60_000)).stdout;
        for (const a of others) if (!out.includes(`ok ${a}`)) failed.push(`${from.host} (${from.release}) → ${a}: ${out.trim()}`);
      }),
    );
    if (failed.length > 0) assert.fail(`${failed.join("\n")}\n${(await Promise.all(live().map((m) => op.diagnose(m.host)))).join("\n")}`);
    log(`12 mesh pings (4 × 3): ${(performance.now() - t0).toFixed(0)} ms`);
  });

  it("a bookworm member's apt pins: only yggdrasil from bookworm-backports and etcd-server/etcd-client from trixie, nothing else from there", () => {
    spawned();
    const m = members.find((x) => x.release === "bookworm")!;
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

  it("a killed voter is replaced: 3 healthy voters again without it, the KV still written and read across releases", async () => {
    spawned();
    const t0 = performance.now();
    // 4 alive members of 5 allowed voters: the largest odd number ≤ 4, 3, vote.
    const roles = await withDiagnosis(
      waitFor(
      "3 healthy voters of 4",
      () => {
        const l = membersOn(members[0]!);
        return l.filter(isVoter).length === 3 && l.filter((x) => x.status === "alive").length === 4 ? l : false;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
      ),
    );
    log(`3 voters of 4: ${secs(t0)}; roles: ${roles.map((x) => `${x.meshAddress.slice(0, 9)}…=${x.role ?? "-"}`).join(" ")}`);
    // A voter that is not the leader (so the replacement, not a re-election, is what is measured).
    const voterAddr = roles.find((x) => x.role === "voter")?.meshAddress;
    const victim = members.find((m) => m.meshAddress === voterAddr);
    assert.ok(victim, `a non-leader voter among the spawned members: ${JSON.stringify(roles)}`);

    const t1 = performance.now();
    await dockerOk(["kill", containerOf(victim)]);
    killed.add(victim.uuid);
    const survivor = live()[0]!;
    const after = await withDiagnosis(
      waitFor(
      `3 healthy voters again without ${victim.host} (${victim.release})`,
      () => {
        const l = membersOn(survivor);
        const v = l.filter(isVoter);
        if (v.length !== 3 || v.some((x) => x.meshAddress === victim.meshAddress)) throw new Error(JSON.stringify(l));
        return l;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
      ),
    );
    log(`docker kill of voter ${victim.host} (${victim.release}) → 3 healthy voters without it: ${secs(t1)}`);
    assert.deepEqual(after.filter(isVoter).map((x) => x.meshAddress).sort(), live().map((m) => m.meshAddress).sort(), "the 3 survivors are the voters");
    assert.notEqual(after.find((x) => x.meshAddress === victim.meshAddress)?.status ?? "gone", "alive", JSON.stringify(after));

    // The operator sees the same, whichever member answers it.
    const seen = await op.members();
    await withDiagnosis(
      (async () => assert.deepEqual(seen.filter(isVoter).map((x) => x.meshAddress).sort(), live().map((m) => m.meshAddress).sort(), JSON.stringify(seen)))(),
    );

    // The shrunk cluster still commits and every survivor reads it, across both releases.
    const [from, ...to] = live();
    const set = op.onNode(from!.host, [RF, "config", "set", "distributions/after-voter-died", from!.release]);
    assert.equal(set.code, 0, set.stderr);
    for (const m of to) {
      await waitFor(`${m.host} (${m.release}) reads the key written after the voter died`, () => op.onNode(m.host, [RF, "config", "get", "distributions/after-voter-died"]).stdout.trim() === from!.release, {
        timeoutMs: 30_000,
        intervalMs: 500,
      });
    }
  });
});
