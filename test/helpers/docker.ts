/**
 * Docker for the docker compute-type tests and bench: is it usable here, an operator sandbox
 * whose spawned containers carry a label of this run (so they can always be found and removed),
 * containers started by hand from the packaged image, SSH to a node with the operator's config.
 */
import { execa } from "execa";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { arch } from "node:os";
import { sandbox, type CliResult, type Sandbox, BIN } from "./cli.ts";
import { remoteCommandLine } from "../../src/remote/quote.ts";

/** The image `raptiformica package --compute-type docker` builds for server type headless and this Debian release (RAPTIFORMICA_DOCKER_RELEASE). */
export function packagedImage(release: "bookworm" | "trixie"): string {
  return `raptiformica-docker:headless-${release}`;
}

/** The packaged image of the default release (bookworm). */
export const PACKAGED_IMAGE = packagedImage("bookworm");

/** Why the docker tests cannot run here, or undefined when they can. */
export function dockerSkipReason(): string | undefined {
  if (!["x64", "arm64"].includes(arch())) return `docker compute type needs x86_64 or aarch64, this is ${arch()}`;
  const which = spawnSync("sh", ["-c", "command -v docker"], { stdio: "ignore" });
  if (which.status !== 0) return "needs docker (bash scripts/setup-docker.sh installs and starts it)";
  const info = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 20_000 });
  if (info.status !== 0 || !info.stdout.trim()) {
    return `docker does not answer (${(info.stderr || "no output").trim().split("\n").pop()}); as root, bash scripts/setup-docker.sh installs and starts it`;
  }
  return undefined;
}

export interface Run extends CliResult {
  ms: number;
}

export async function docker(args: string[], timeoutMs = 120_000): Promise<Run> {
  const t0 = performance.now();
  const r = await execa("docker", args, { reject: false, timeout: timeoutMs });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

export async function dockerOk(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await docker(args, timeoutMs);
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** An operator machine: a throwaway $HOME, the CLI as a user runs it, a label on everything it starts. */
export class DockerOperator {
  readonly sb: Sandbox;
  /** Docker label of this run: `raptiformica.test=<id>` is on every container and network it makes. */
  readonly label: string;
  constructor() {
    this.sb = sandbox();
    this.label = `raptiformica.test=${randomUUID().slice(0, 8)}`;
  }
  get cache(): string {
    return this.sb.cache;
  }
  get home(): string {
    return this.sb.home;
  }

  /** The CLI's environment: this sandbox's HOME; spawned containers get this run's label. */
  get env(): NodeJS.ProcessEnv {
    return { PATH: process.env["PATH"], HOME: this.sb.home, LANG: "C.UTF-8", RAPTIFORMICA_DOCKER_RUN_ARGS: `--label ${this.label}` };
  }

  /** `bin/raptiformica ARGS` as a user runs it, from this sandbox; `env` is added to its environment. */
  async rf(args: string[], timeoutMs = 240_000, env: NodeJS.ProcessEnv = {}): Promise<Run> {
    const t0 = performance.now();
    const r = await execa(BIN, args, {
      env: { ...this.env, ...env },
      extendEnv: false,
      cwd: this.sb.home,
      reject: false,
      timeout: timeoutMs,
    });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
  }

  async rfOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.rf(args, timeoutMs);
    if (r.code !== 0) throw new Error(`raptiformica ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
    return r.stdout;
  }

  /** A command on a node, over SSH with raptiformica's own ssh_config (its key, its known_hosts); argv quoted word by word. */
  onNode(host: string, argv: string[], timeoutMs = 60_000): CliResult {
    const r = spawnSync("ssh", ["-F", join(this.cache, "ssh", "ssh_config"), `root@${host}`, "--", remoteCommandLine(argv)], { encoding: "utf8", timeout: timeoutMs });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** onNode without blocking the event loop, so commands on several nodes run at once. */
  async onNodeAsync(host: string, argv: string[], timeoutMs = 60_000): Promise<CliResult> {
    const r = await execa("ssh", ["-F", join(this.cache, "ssh", "ssh_config"), `root@${host}`, "--", remoteCommandLine(argv)], { reject: false, timeout: timeoutMs });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * What a member was doing, for a failed check's message: its processes (raptiformica's, its
   * node, yggdrasil and etcd ones, sshd and the container's init), the peerings its yggdrasil
   * lists (`yggdrasilctl getPeers`), and the last `lines` lines of the log of the image's
   * restart of the member (/var/log/raptiformica/restart.log, written by the docker
   * entrypoint's `mesh` when a container starts again) and of the agent's, yggdrasil's and
   * etcd's logs. Asked over SSH; with `container` (a docker container id or name) through
   * `docker exec` instead, for a member whose sshd may be what is not answering. 30 s bound.
   * Never throws: an unreachable member says so.
   */
  async diagnose(host: string, lines = 30, container?: string): Promise<string> {
    const logs = ["/var/log/raptiformica/restart.log", ...["agent", "yggdrasil", "etcd"].map((n) => `/root/.raptiformica.d/node/log/${n}.log`)].join(" ");
    const script =
      // Kernel threads (args all in brackets) are left out; sshd's "[listener]" is not one.
      "ps -eo pid,etimes,args | grep -vE '^ *[0-9]+ +[0-9]+ \\[[^]]*\\]$' | grep -E 'yggdrasil|etcd|raptiformica|node |sshd|init' | grep -v grep; " +
      "s=$(ls /root/.raptiformica.d/node/run/*.sock 2>/dev/null | head -n1); echo \"== getPeers ($s)\"; " +
      "[ -n \"$s\" ] && yggdrasilctl -endpoint unix://$s getPeers 2>&1 | head -n 20; " +
      `for f in ${logs}; do echo "== $f"; tail -n ${lines} "$f"; done`;
    const asked = container !== undefined ? docker(["exec", container, "sh", "-c", script], 30_000) : this.onNodeAsync(host, ["sh", "-c", script], 30_000);
    const r = await asked.catch((e: unknown) => ({ code: -1, stdout: "", stderr: String(e) }));
    const where = container !== undefined ? `${host} (container ${container.slice(0, 12)})` : host;
    return `==== ${where} (exit ${r.code})\n${r.stdout}${r.stderr ? `\n${r.stderr}` : ""}`;
  }

  /** `members --json` from this operator (answered by a member over SSH). */
  async members(): Promise<{ name: string; meshAddress: string; host?: string; status: string; role?: string }[]> {
    const r = await this.rf(["members", "--json"], 60_000);
    return (JSON.parse(r.stdout) as { members: { name: string; meshAddress: string; host?: string; status: string; role?: string }[] }).members;
  }

  /** Removes every container and network of this run, whatever state it is in; then the sandbox. */
  async cleanup(): Promise<void> {
    const ids = (await docker(["ps", "-aq", "--filter", `label=${this.label}`])).stdout.split("\n").filter(Boolean);
    if (ids.length > 0) await docker(["rm", "-f", "-v", ...ids]);
    const nets = (await docker(["network", "ls", "-q", "--filter", `label=${this.label}`])).stdout.split("\n").filter(Boolean);
    for (const n of nets) await docker(["network", "rm", n]);
    this.sb.cleanup();
  }

  /** Containers of this run (spawned or started by hand). */
  async containers(): Promise<string[]> {
    return (await docker(["ps", "-aq", "--filter", `label=${this.label}`])).stdout.split("\n").filter(Boolean);
  }

  async network(name: string): Promise<string> {
    await dockerOk(["network", "create", "--label", this.label, name]);
    return name;
  }

  /**
   * A container of the packaged image on the given networks, started by hand (not by spawn),
   * reachable as root with `authorizedKeys`; its SSH host key is its own (made by the
   * entrypoint). Returns its IPv4 address per network once its sshd answers.
   */
  async container(name: string, networks: string[], authorizedKeys: string, image = PACKAGED_IMAGE): Promise<Record<string, string>> {
    const [first, ...more] = networks;
    await dockerOk([
      "run", "-d", "--init", "--name", name, "--hostname", name, "--label", this.label,
      "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
      ...(first ? ["--network", first] : []),
      "-e", `RAPTIFORMICA_AUTHORIZED_KEYS=${authorizedKeys}`,
      image,
    ]);
    for (const n of more) await dockerOk(["network", "connect", n, name]);
    const addrs = JSON.parse(await dockerOk(["inspect", "-f", "{{json .NetworkSettings.Networks}}", name])) as Record<string, { IPAddress: string }>;
    const out = Object.fromEntries(Object.entries(addrs).map(([k, v]) => [k, v.IPAddress]));
    const anyAddr = Object.values(out)[0]!;
    for (let i = 0; i < 100; i++) {
      const scan = spawnSync("ssh-keyscan", ["-T", "1", "-t", "ed25519", anyAddr], { encoding: "utf8" });
      if (scan.stdout.includes("ssh-ed25519")) return out;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`sshd of container ${name} (${anyAddr}) did not answer`);
  }
}
