/**
 * Benchmark: what the Yggdrasil mesh costs on one path, measured with iperf3 (Debian package
 * `iperf3`; installed here with apt-get when missing) and ping, for each Yggdrasil major side by
 * side: Debian's 0.4 (the yggdrasil on PATH) and 0.5 (scripts/fetch-yggdrasil-0.5.sh, into
 * /opt/raptiformica-test/yggdrasil-0.5, fetched when missing; test/helpers/netns-pair.ts).
 *
 * Each run: a 3-node "line" lab (test/lab: n0–n1–n2, one veth pair and /30 per link) with a
 * yggdrasil in every namespace, configured as a member's is (src/mesh/yggdrasil renderConfig:
 * peers pinned by key, AllowedPublicKeys, no multicast): n0 and n2 dial n1, nobody dials n0–n2
 * directly (n0 cannot even reach n2's addresses: the lab's namespaces do not forward). Then:
 *
 *   1 hop:  n0 → n1 over the mesh (n1's 200::/7 address) and over the veth (its IPv4 address);
 *   2 hops: n0 → n2 over the mesh (routed by n1's yggdrasil) and over the same veths with the
 *           kernel forwarding in n1 instead (ip_forward=1 there and a host route each way, set
 *           only after the mesh figures, so the mesh path cannot take the kernel's short cut).
 *
 * For each: one TCP stream, `iperf3 -c <address> -t <--seconds> -J` (the receiver's rate), and
 * `ping -c <--pings> -i 0.2` (median round trip). Reported as mesh / direct ratios: throughput
 * below 1 is what the mesh loses, latency above 1 what it adds. Everything runs on one machine,
 * so the mesh's own CPU cost (encryption, user-space TUN) competes with iperf3 for the same
 * cores: on a 2-core box shared with others, figures are noisy.
 *
 *   node --import tsx bench/mesh-throughput.ts [--runs 3] [--seconds 5] [--pings 20] [--majors 0.4,0.5]
 *
 * Needs root (network namespaces). Prints a table and a JSON line. The lab (and every process in
 * it) is removed after each run, on errors, and on SIGINT/SIGTERM (bench/lib/common.ts).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadOrCreateIdentity, renderConfig, waitForAdmin, writeConfigFile, yggdrasilArgv, type Identity, type Major, type YggdrasilInfo } from "../src/mesh/yggdrasil/index.ts";
import { findYggdrasilBinaries } from "../test/helpers/netns-pair.ts";
import { Lab } from "../test/lab/index.ts";
import { brief, loadAverage, median, numOpt, sleep, strOpt } from "./lib/common.ts";
import { mbit, parseIperf3, parsePingRtts, pingLoss, ratio } from "./lib/mesh-figures.ts";

const runs = numOpt("--runs", 3);
const seconds = numOpt("--seconds", 5);
const pings = numOpt("--pings", 20);
const majors = strOpt("--majors", "0.4,0.5").split(",") as Major[];
const YGG_PORT = 4863;
const IPERF_PORT = "5201";
const A = 0;
const B = 1;
const C = 2;

for (const m of majors) {
  if (m !== "0.4" && m !== "0.5") {
    console.error(`--majors takes 0.4 and/or 0.5, not ${m}`);
    process.exit(2);
  }
}
if (process.getuid?.() !== 0) {
  console.error("needs root (network namespaces)");
  process.exit(2);
}
if (spawnSync("sh", ["-c", "command -v iperf3"], { stdio: "ignore" }).status !== 0) {
  console.error("iperf3 is missing: apt-get install iperf3");
  const r = spawnSync("apt-get", ["install", "-y", "-q", "iperf3"], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (r.status !== 0) process.exit(2);
}

/** Throughput and round trip of one path, mesh and direct. */
interface PathFigures {
  meshMbit: number | null;
  directMbit: number | null;
  meshRetransmits: number | null;
  directRetransmits: number | null;
  meshPingMs: number | null;
  directPingMs: number | null;
  meshPingLost: number | null;
  directPingLost: number | null;
  errors: string[];
}

const emptyPath = (): PathFigures => ({
  meshMbit: null,
  directMbit: null,
  meshRetransmits: null,
  directRetransmits: null,
  meshPingMs: null,
  directPingMs: null,
  meshPingLost: null,
  directPingLost: null,
  errors: [],
});

async function must(lab: Lab, i: number, argv: string[]): Promise<void> {
  const r = await lab.exec(i, argv, { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`n${i}: ${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.trim()}`);
}

async function reachable(lab: Lab, from: number, address: string): Promise<boolean> {
  const r = await lab.exec(from, ["ping", ...(address.includes(":") ? ["-6"] : []), "-c1", "-W1", address], { timeoutMs: 5_000 });
  return r.exitCode === 0;
}

/** Up to `tries` pings, 300 ms apart, until one is answered. */
async function waitReachable(lab: Lab, from: number, address: string, tries: number): Promise<void> {
  for (let k = 0; k < tries; k++) {
    if (await reachable(lab, from, address)) return;
    await sleep(300);
  }
  throw new Error(`n${from} cannot reach ${address} after ${tries} pings`);
}

/** One iperf3 client run; a refused connection (server not listening yet) is retried a few times. */
async function iperf(lab: Lab, from: number, address: string): Promise<{ mbit: number; retransmits: number | null }> {
  let last = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await lab.exec(from, ["iperf3", "-c", address, "-p", IPERF_PORT, "-t", String(seconds), "-J"], { timeoutMs: (seconds + 30) * 1000 });
    try {
      const res = parseIperf3(r.stdout);
      return { mbit: mbit(res.bitsPerSecond), retransmits: res.retransmits ?? null };
    } catch (e) {
      last = r.timedOut ? "iperf3 timed out" : brief(e);
      if (!/unable to connect|busy/i.test(last)) break;
      await sleep(500);
    }
  }
  throw new Error(`iperf3 n${from} → ${address}: ${last}`);
}

async function pingMedian(lab: Lab, from: number, address: string): Promise<{ ms: number | null; lost: number | null }> {
  const r = await lab.exec(from, ["ping", ...(address.includes(":") ? ["-6"] : []), "-c", String(pings), "-i", "0.2", "-W", "2", address], {
    timeoutMs: (pings * 0.2 + 15) * 1000,
  });
  const ms = median(parsePingRtts(r.stdout));
  return { ms: ms === undefined ? null : Math.round(ms * 1000) / 1000, lost: pingLoss(r.stdout) ?? null };
}

/** Fills the mesh or direct half of `p`; a failure is recorded, not thrown, so the other half still runs. */
async function measure(lab: Lab, p: PathFigures, side: "mesh" | "direct", to: string): Promise<void> {
  try {
    const t = await iperf(lab, A, to);
    const l = await pingMedian(lab, A, to);
    p[`${side}Mbit`] = t.mbit;
    p[`${side}Retransmits`] = t.retransmits;
    p[`${side}PingMs`] = l.ms;
    p[`${side}PingLost`] = l.lost;
  } catch (e) {
    p.errors.push(`${side}: ${brief(e)}`);
  }
}

/** Starts yggdrasil on node i as a member would run it; n0 and n2 dial n1. */
async function startYggdrasil(lab: Lab, info: YggdrasilInfo, i: number, ids: Identity[]): Promise<void> {
  const dir = join(lab.nodes[i]!.dir, "ygg");
  const socket = join(dir, "ygg.sock");
  const configFile = join(dir, "yggdrasil.conf");
  const me = ids[i]!;
  const peers = i === B ? [] : [{ host: lab.addressOf(B, i), port: YGG_PORT, publicKey: ids[B]!.publicKey }];
  const allowed = i === B ? [ids[A]!.publicKey, ids[C]!.publicKey] : [ids[B]!.publicKey];
  const text = renderConfig({
    major: info.major,
    privateKey: me.privateKey,
    publicKey: me.publicKey,
    listenPort: YGG_PORT,
    peers,
    allowedPublicKeys: allowed,
    adminSocket: socket,
    ifName: "ygg0",
  });
  await writeConfigFile(configFile, text);
  lab.spawn(i, yggdrasilArgv({ binary: info.binary, configFile }), { label: "yggdrasil" });
  await waitForAdmin(socket, info.major, 15_000);
}

async function oneRun(info: YggdrasilInfo): Promise<{ oneHop: PathFigures; twoHops: PathFigures }> {
  const lab = await Lab.create({ nodes: 3, topology: "line" });
  const oneHop = emptyPath();
  const twoHops = emptyPath();
  try {
    const ids: Identity[] = [];
    for (const n of lab.nodes) ids.push(await loadOrCreateIdentity(join(n.dir, "ygg"), info));
    for (const i of [B, A, C]) await startYggdrasil(lab, info, i, ids);
    const meshB = ids[B]!.address;
    const meshC = ids[C]!.address;
    await waitReachable(lab, A, meshB, 100);
    await waitReachable(lab, A, meshC, 100);
    // The 2-hop mesh figure is only a 2-hop figure if n0 has no other way to n2.
    const directC = lab.addressOf(C, B);
    if (await reachable(lab, A, directC)) throw new Error(`n0 reaches n2's ${directC} without the mesh: the lab forwards, the 2-hop figure would be wrong`);
    for (const i of [B, C]) lab.spawn(i, ["iperf3", "-s", "-p", IPERF_PORT], { label: "iperf3" });
    await sleep(300);

    await measure(lab, oneHop, "direct", lab.addressOf(B, A));
    await measure(lab, oneHop, "mesh", meshB);
    await measure(lab, twoHops, "mesh", meshC);

    // Now the kernel path through n1, for the direct 2-hop figure.
    await must(lab, B, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await must(lab, A, ["ip", "route", "add", `${directC}/32`, "via", lab.addressOf(B, A)]);
    await must(lab, C, ["ip", "route", "add", `${lab.addressOf(A, B)}/32`, "via", lab.addressOf(B, C)]);
    await waitReachable(lab, A, directC, 10);
    await measure(lab, twoHops, "direct", directC);
  } finally {
    await lab.destroy();
  }
  return { oneHop, twoHops };
}

type Summary = {
  meshMbit: number | null;
  directMbit: number | null;
  throughputRatio: number | null;
  meshPingMs: number | null;
  directPingMs: number | null;
  latencyRatio: number | null;
};

function summarise(xs: PathFigures[]): Summary {
  const med = (k: keyof Omit<PathFigures, "errors">) => {
    const v = median(xs.map((x) => x[k]).filter((x): x is number => x !== null));
    return v === undefined ? null : Math.round(v * 1000) / 1000;
  };
  const s = { meshMbit: med("meshMbit"), directMbit: med("directMbit"), meshPingMs: med("meshPingMs"), directPingMs: med("directPingMs") };
  return {
    ...s,
    throughputRatio: ratio(s.meshMbit ?? undefined, s.directMbit ?? undefined) ?? null,
    latencyRatio: ratio(s.meshPingMs ?? undefined, s.directPingMs ?? undefined) ?? null,
  };
}

const loadAtStart = loadAverage();
const bins = await findYggdrasilBinaries();
const results: { major: Major; version: string | null; skipped?: string; runs: { oneHop: PathFigures; twoHops: PathFigures }[]; oneHop?: Summary; twoHops?: Summary }[] = [];
for (const major of majors) {
  const found = bins.get(major);
  if ("skip" in found) {
    console.error(`Yggdrasil ${major}: skipped, ${found.skip}`);
    results.push({ major, version: null, skipped: found.skip, runs: [] });
    continue;
  }
  const info = found.info;
  const out: { oneHop: PathFigures; twoHops: PathFigures }[] = [];
  for (let run = 1; run <= runs; run++) {
    console.error(`Yggdrasil ${info.version}, run ${run}/${runs} (load ${loadAverage()})`);
    try {
      const r = await oneRun(info);
      out.push(r);
      for (const [name, p] of [["1 hop", r.oneHop], ["2 hops", r.twoHops]] as const) {
        console.error(
          `  ${name}: mesh ${p.meshMbit ?? "-"} Mbit/s ${p.meshPingMs ?? "-"} ms, direct ${p.directMbit ?? "-"} Mbit/s ${p.directPingMs ?? "-"} ms${p.errors.length ? `; ${p.errors.join("; ")}` : ""}`,
        );
      }
    } catch (e) {
      console.error(`  failed: ${brief(e)}`);
      out.push({ oneHop: { ...emptyPath(), errors: [brief(e)] }, twoHops: { ...emptyPath(), errors: [brief(e)] } });
    }
  }
  results.push({ major, version: info.version, runs: out, oneHop: summarise(out.map((x) => x.oneHop)), twoHops: summarise(out.map((x) => x.twoHops)) });
}

const cell = (x: number | null | undefined, unit = "") => (x === null || x === undefined ? "-" : `${x}${unit}`);
console.log(`One TCP stream (iperf3 -t ${seconds}) and ping -c ${pings}, mesh vs the same veths without it; medians of ${runs} run(s); load average at start ${loadAtStart} (numbers are noisy)`);
console.log(
  ["yggdrasil".padEnd(10), "path".padEnd(7), "mesh Mbit/s".padStart(12), "veth Mbit/s".padStart(12), "ratio".padStart(6), "mesh ping ms".padStart(13), "veth ping ms".padStart(13), "ratio".padStart(6)].join("  "),
);
for (const r of results) {
  if (r.skipped) {
    console.log(`${r.major.padEnd(10)}  skipped: ${r.skipped}`);
    continue;
  }
  for (const [name, s] of [["1 hop", r.oneHop], ["2 hops", r.twoHops]] as const) {
    console.log(
      [
        (r.version ?? r.major).padEnd(10),
        name.padEnd(7),
        cell(s?.meshMbit).padStart(12),
        cell(s?.directMbit).padStart(12),
        cell(s?.throughputRatio).padStart(6),
        cell(s?.meshPingMs).padStart(13),
        cell(s?.directPingMs).padStart(13),
        cell(s?.latencyRatio).padStart(6),
      ].join("  "),
    );
  }
  for (const e of r.runs.flatMap((x) => [...x.oneHop.errors, ...x.twoHops.errors])) console.log(`  error (${r.version ?? r.major}): ${e}`);
}
console.log(JSON.stringify({ tool: "iperf3", seconds, pings, runs, loadAtStart, yggdrasil: results }));
