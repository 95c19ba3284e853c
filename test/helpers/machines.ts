import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CACHE_MARKER } from "../../src/config/paths.ts";
import { run } from "../../src/util/exec.ts";
import { ROOT } from "./cli.ts";

/*
 * Bare SSH machines for tests and benchmarks: the netns compute type's instances
 * (modules/compute/netns/start_instance.sh — network + mount + UTS namespaces on the bridge
 * rfns0, 198.18.250.0/24, with their own sshd, /root and /usr/etc/raptiformica), started
 * directly rather than through `spawn`, so nothing is installed or registered on them: what
 * `slave` or `deploy` would find on a fresh root-SSH host.
 *
 * A machine "behind" another is reachable only from that machine's namespace: it is taken
 * off the bridge and linked to the other machine by a veth pair with a /30 of 198.18.251.0/24,
 * where its sshd listens. The host gets an `unreachable` route for 198.18.251.0/24 while such
 * machines exist, so nothing sent there from the host or the bridge leaves the machine
 * (the host may forward to its default route otherwise).
 *
 * Every machine is removed with clean_up_instance.sh by `cleanup()` — and, should the process
 * die first, by an exit handler.
 */

const NETNS = join(ROOT, "modules", "compute", "netns");
const BEHIND_NET = "198.18.251";
const LOCK = "/run/raptiformica-netns.lock";

export interface Machine {
  readonly dir: string;
  readonly ns: string;
  readonly address: string;
  readonly port: number;
  /** The machine it is reachable through, for a machine made by `startBehind`. */
  readonly behind?: Machine;
}

/** The operator's own SSH key in its cache dir (what raptiformica would make on first use). */
export function ensureOperatorKey(cacheDir: string): string {
  const dir = join(cacheDir, "ssh");
  const key = join(dir, "id_ed25519");
  if (!existsSync(key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The cache dir is raptiformica's: it refuses to keep state in a folder without this mark.
    writeFileSync(join(cacheDir, CACHE_MARKER), "", { mode: 0o600 });
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "raptiformica-test", "-f", key]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  return `${key}.pub`;
}

async function sh(script: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<string> {
  const r = await run("sh", ["-c", script, "sh", ...args], { timeoutMs, cwd, env: { ...process.env, ...env } });
  if (r.exitCode !== 0) throw new Error(`machine setup failed in ${cwd} (exit ${r.exitCode}${r.timedOut ? ", timed out" : ""}): ${(r.failedToStart ?? r.stderr).trim()}`);
  return r.stdout;
}

/** Moves a started instance off the bridge behind `via`; its sshd is restarted on the new link. */
const BEHIND_SCRIPT = `
set -eu
ns=$1; vns=$2; mine=$3; theirs=$4; link=$5; netns_module=$6
exec 9>${LOCK}
flock -w 60 9
ip route replace unreachable ${BEHIND_NET}.0/24
flock -u 9
# Off the bridge: the veth pair goes, eth0 in the namespace with it.
ip link del "rfv$(printf %s "$ns" | cut -c5-12)"
kill "$(cat sshd.pid)"
i=0
while [ -n "$(ip netns pids "$ns")" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
rm -f sshd.pid
ip link add "$link" netns "$vns" type veth peer name eth1 netns "$ns"
ip -n "$vns" addr add "$theirs/30" dev "$link"
ip -n "$vns" link set "$link" up
ip -n "$ns" addr add "$mine/30" dev eth1
ip -n "$ns" link set eth1 up
# sshd listens on every address of the namespace (ListenAddress 0.0.0.0 / ::): only an
# instance made before that listened on its bridge address, which moves.
sed -i "s/^ListenAddress $(cat address)\\$/ListenAddress $mine/" sshd_config
grep -qx -e "ListenAddress $mine" -e "ListenAddress 0.0.0.0" sshd_config
printf %s "$mine" > address
sh "$netns_module/run_sshd.sh" "$(pwd)" "$ns"
`;

/** Drops the host's unreachable route once no machine is behind another any more. */
const UNROUTE_SCRIPT = `
exec 9>${LOCK}
flock -w 60 9
for n in $(ip netns list | awk '/^rfn-/ {print $1}'); do
    ip -n "$n" -o -4 addr show 2>/dev/null | grep -q " ${BEHIND_NET}\\." && exit 0
done
ip route del unreachable ${BEHIND_NET}.0/24 2>/dev/null
exit 0
`;

const live = new Set<string>();
let exitHook = false;

function cleanUpSync(dir: string): void {
  spawnSync("sh", [join(NETNS, "clean_up_instance.sh")], { cwd: dir, stdio: "ignore", timeout: 60_000 });
}

/**
 * A set of bare machines. `cacheDir` is the operator's cache dir: its ssh/id_ed25519.pub
 * (made here if missing) is let in as root, besides the caller's agent and ~/.ssh keys.
 */
export class Machines {
  readonly base: string;
  readonly all: Machine[] = [];
  private behindCount = 0;

  constructor(readonly cacheDir: string) {
    ensureOperatorKey(cacheDir);
    this.base = mkdtempSync(join(tmpdir(), "rf-machines-"));
    if (!exitHook) {
      exitHook = true;
      const sweep = () => {
        for (const d of live) cleanUpSync(d);
        if (live.size) spawnSync("sh", ["-c", UNROUTE_SCRIPT], { stdio: "ignore" });
        live.clear();
      };
      process.on("exit", sweep);
      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.once(sig, () => {
          sweep();
          process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
        });
      }
    }
  }

  /** A machine on the bridge, reachable from here at its address. */
  async start(): Promise<Machine> {
    const dir = join(this.base, randomBytes(16).toString("hex"));
    mkdirSync(dir);
    live.add(dir);
    const m = { dir, ns: "", address: "", port: 22 };
    this.all.push(m);
    await sh(`exec sh "${join(NETNS, "start_instance.sh")}"`, [], dir, { RAPTIFORMICA_CACHE_DIR: this.cacheDir, RAPTIFORMICA_HOME: ROOT });
    Object.assign(m, { ns: readFileSync(join(dir, "netns"), "utf8").trim(), address: readFileSync(join(dir, "address"), "utf8").trim() });
    return m;
  }

  /** `n` machines on the bridge, started `parallel` at a time. */
  async startMany(n: number, parallel = 4): Promise<Machine[]> {
    const out: Machine[] = new Array(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(parallel, n) }, async () => {
        while (next < n) {
          const i = next++;
          out[i] = await this.start();
        }
      }),
    );
    return out;
  }

  /** A machine reachable only from `via`'s namespace (ProxyJump through `via`). */
  async startBehind(via: Machine): Promise<Machine> {
    const m = await this.start();
    const k = this.behindCount++ % 64;
    const mine = `${BEHIND_NET}.${4 * k + 2}`;
    const theirs = `${BEHIND_NET}.${4 * k + 1}`;
    const link = `rfw${m.ns.slice(4, 12)}`;
    await sh(BEHIND_SCRIPT, [m.ns, via.ns, mine, theirs, link, NETNS], m.dir);
    Object.assign(m, { address: mine, behind: via });
    return m;
  }

  /** Runs argv inside a machine's network namespace (not its mount namespace). */
  inNetns(m: Machine, argv: string[], timeoutMs = 15_000) {
    return run("ip", ["netns", "exec", m.ns, ...argv], { timeoutMs });
  }

  /** Removes every machine (processes, namespace, links), the route, and the temp dir. */
  async cleanup(): Promise<void> {
    for (const m of this.all) {
      try {
        await sh(`exec sh "${join(NETNS, "clean_up_instance.sh")}"`, [], m.dir, {}, 90_000);
      } catch (e) {
        process.stderr.write(`cleanup of ${m.dir}: ${(e as Error).message}\n`);
      }
      live.delete(m.dir);
    }
    await sh(UNROUTE_SCRIPT, [], this.base).catch(() => undefined);
    rmSync(this.base, { recursive: true, force: true });
    this.all.length = 0;
  }
}

/** An inventory file for `deploy`. */
export function writeInventory(dir: string, name: string, entries: readonly { dst: string; port?: number | string; via?: string }[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(entries, null, 2)}\n`);
  return path;
}
