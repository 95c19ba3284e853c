/**
 * A throw-away etcd cluster of `voters` members on loopback addresses (127.<b>.<c>.11…), each
 * started with the agent's own flags (etcdServerArgs: mutual TLS from a fresh cluster CA,
 * compaction, pre-vote), plus a plain-HTTP metrics listener. Each member's client port is its
 * own on 127.0.0.1 too (the agent talks to its local etcd there). Processes and the data dir
 * are removed on `stop()` and, synchronously, when the process exits (Ctrl-C, a failure).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { etcdServerArgs, peerUrl } from "../../src/consensus/etcd-args.ts";
import { createCa, issueCertificate } from "../../src/consensus/tls.ts";
import type { TlsFiles } from "../../src/consensus/client.ts";
import { sleep } from "./common.ts";

export interface LoopbackMember {
  readonly name: string;
  /** Its peer address: 127.<b>.<c>.<11+i>. */
  readonly address: string;
  readonly clientPort: number;
  readonly metricsUrl: string;
  readonly proc: ChildProcess;
}

export interface LoopbackCluster {
  readonly dir: string;
  readonly tls: TlsFiles;
  readonly peerPort: number;
  readonly members: readonly LoopbackMember[];
  stop(): Promise<void>;
}

/**
 * Starts the cluster and waits (at most `timeoutMs`) until every member answers /health.
 * @throws Error naming the member whose etcd exited or did not become healthy (its last log lines).
 */
export async function startLoopbackCluster(o: { etcdBinary: string; voters: number; timeoutMs?: number }): Promise<LoopbackCluster> {
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  writeFileSync(join(dir, "owner.pid"), String(process.pid));
  const procs: ChildProcess[] = [];
  const cleanup = () => {
    for (const p of procs) if (p.exitCode === null && p.pid) try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  try {
    // Random /16 and ports: other runs on this machine use 127.0.0.1 and the usual ports.
    const b = 100 + Math.floor(Math.random() * 150);
    const c = 1 + Math.floor(Math.random() * 250);
    const base = 30_000 + Math.floor(Math.random() * 2000) * 10;
    const peerPort = base;
    const addresses = Array.from({ length: o.voters }, (_, i) => `127.${b}.${c}.${11 + i}`);
    const ca = await createCa();
    const cert = await issueCertificate(ca, { commonName: "sim", ips: ["127.0.0.1", ...addresses], dnsNames: ["localhost"] });
    const tls: TlsFiles = { caCert: join(dir, "ca.crt"), nodeCert: join(dir, "node.crt"), nodeKey: join(dir, "node.key") };
    writeFileSync(tls.caCert, ca.certPem);
    writeFileSync(tls.nodeCert, cert.certPem);
    writeFileSync(tls.nodeKey, cert.keyPem, { mode: 0o600 });
    const names = addresses.map((_, i) => `v${i}`);
    const initialCluster = new Map(names.map((n, i) => [n, peerUrl(addresses[i]!, peerPort)]));
    const members: LoopbackMember[] = addresses.map((address, i) => {
      const etcdData = join(dir, names[i]!, "data");
      mkdirSync(join(dir, names[i]!), { recursive: true });
      const metricsUrl = `http://${address}:${base + 9}`;
      const args = [
        ...etcdServerArgs(
          { ...tls, etcdDir: join(dir, names[i]!), etcdData },
          { name: names[i]!, meshAddress: address, clientPort: base + 1 + i, peerPort, state: "new", initialCluster, token: "sim", heartbeatMs: 100, electionMs: 1000 },
        ),
        "--listen-metrics-urls", metricsUrl,
      ];
      const log = createWriteStream(join(dir, `${names[i]}.log`));
      // SIGKILL when this process dies without running its exit hook (out of memory, SIGKILL).
      const proc = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", o.etcdBinary, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      proc.stdout!.pipe(log);
      proc.stderr!.pipe(log);
      procs.push(proc);
      return { name: names[i]!, address, clientPort: base + 1 + i, metricsUrl, proc };
    });
    const deadlineAt = Date.now() + (o.timeoutMs ?? 30_000);
    for (const m of members) {
      for (;;) {
        if (m.proc.exitCode !== null) throw new Error(`etcd ${m.name} exited (${m.proc.exitCode}); see ${dir}/${m.name}.log`);
        const ok = await fetch(`${m.metricsUrl}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok).catch(() => false);
        if (ok) break;
        if (Date.now() > deadlineAt) throw new Error(`etcd ${m.name} not healthy within ${o.timeoutMs ?? 30_000} ms`);
        await sleep(200);
      }
    }
    return {
      dir,
      tls,
      peerPort,
      members,
      stop: async () => {
        for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
        await Promise.race([Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once("exit", r))))), sleep(5000)]);
        cleanup();
        process.off("exit", cleanup);
      },
    };
  } catch (e) {
    cleanup();
    process.off("exit", cleanup);
    throw e;
  }
}

/** etcd's Prometheus text at `url`/metrics, as name{labels} → value (only lines with a number). */
export async function scrapeMetrics(metricsUrl: string): Promise<Map<string, number>> {
  const text = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text());
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    const v = Number(line.slice(i + 1));
    if (Number.isFinite(v)) out.set(line.slice(0, i), v);
  }
  return out;
}

const DIR_PREFIX = "raptiformica-sim-etcd-";

/** Data dirs of earlier runs whose process died without cleaning up (its etcds died with it: pdeathsig). */
function sweepStaleDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const pidFile = join(dir, "owner.pid");
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, "utf8"));
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      alive = false;
    }
    if (!alive) rmSync(dir, { recursive: true, force: true });
  }
}
