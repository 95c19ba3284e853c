/**
 * A multi-node network lab out of Linux network namespaces, for tests and benchmarks that need
 * several "machines" on one box (in the spirit of Tailscale's tstest/natlab).
 *
 * Each node is a namespace with its own HOME and cache dir. "full" puts every node on one L2
 * segment (a bridge in a switch namespace, one veth per node, so 50+ nodes cost 50 veths, not
 * n²). Other topologies give every link its own veth pair and /30; namespaces never forward, so
 * in a line A–B–C only something running on top (the mesh) can carry A's traffic to C.
 *
 * Nothing touches the host's interfaces or routes: veths are created directly inside lab
 * namespaces. All names carry a random per-lab id; destroy() and cleanupStaleLabs() remove
 * processes, namespaces (which takes their veths along) and directories.
 */
import { spawn as spawnChild, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  cpSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { run } from "../../src/util/exec.ts";
import {
  checkLink,
  LINK_PREFIX_LEN,
  linkAddresses,
  MAX_NODES,
  parentInTree,
  SEGMENT_PREFIX_LEN,
  segmentAddress,
  topologyLinks,
  type Topology,
} from "./addressing.ts";
import {
  deleteNamespaces,
  deleteNamespacesSync,
  ip,
  ipBatch,
  killNamespaceProcesses,
  killNamespaceProcessesSync,
  listNamespaces,
  mapLimit,
  NETNS_RUN_DIR,
  processStartTime,
} from "./netns.ts";

export type { Topology } from "./addressing.ts";

export const DEFAULT_PREFIX = "rfl-";
export const DEFAULT_BASE_DIR = join(tmpdir(), "raptiformica-lab");
/**
 * Who owns which lab, at a fixed place whatever baseDir a lab uses, so cleanupStaleLabs() can
 * tell a crashed run's leftovers from a lab another test process is using right now. Under
 * /run like the namespaces themselves: both vanish on reboot.
 */
export const REGISTRY_DIR = "/run/raptiformica-lab";

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** Parallel `ip` processes while configuring namespaces; more does not help on a small box. */
const SETUP_CONCURRENCY = 8;
const SEGMENT_IF = "seg0";
const BRIDGE = "br0";

const NODE_SYSCTLS = [
  // Explicit, because a new namespace may inherit the host's values (devconf_inherit_init_net).
  "net.ipv4.ip_forward=0",
  "net.ipv6.conf.all.forwarding=0",
  "net.ipv6.conf.all.disable_ipv6=0",
  "net.ipv6.conf.default.disable_ipv6=0",
  // No duplicate address detection: addresses are usable at once, also after plug/restore.
  "net.ipv6.conf.all.accept_dad=0",
  "net.ipv6.conf.default.accept_dad=0",
];
// The switch only bridges frames; without IPv6 its ports stay silent (no RS/MLD noise).
const SWITCH_SYSCTLS = ["net.ipv4.ip_forward=0", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];

export interface LabNode {
  readonly index: number;
  readonly name: string;
  readonly ns: string;
  /** Per-node state dir; HOME, the cache dir and logs/ live below it. */
  readonly dir: string;
  readonly home: string;
  readonly cacheDir: string;
  /** IPv4 addresses, primary first: the segment address, or one per link in link order. */
  readonly addresses: readonly string[];
}

export interface LabLink {
  /** Lower node index, its interface and address. */
  readonly a: number;
  readonly ifA: string;
  readonly addrA: string;
  readonly b: number;
  readonly ifB: string;
  readonly addrB: string;
}

export interface LabOptions {
  nodes: number;
  topology: Topology;
  /** Parent of the lab's directory (default: $TMPDIR/raptiformica-lab). */
  baseDir?: string;
  /** Namespace name prefix (default "rfl-"): lowercase letters/digits ending in "-". */
  prefix?: string;
  /** Survives the creating process (the CLI's `up`); only destroy()/`down`/cleanup --all remove it. */
  persistent?: boolean;
}

export interface ExecOptions {
  /** Merged over the node's HOME / RAPTIFORMICA_CACHE_DIR / PATH; undefined values unset. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: string;
  /** Working directory (default: the node's HOME). */
  cwd?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

interface NodeState {
  index: number;
  name: string;
  ns: string;
  dir: string;
  home: string;
  cacheDir: string;
  addresses: string[];
}

interface LabState {
  version: 1;
  id: string;
  prefix: string;
  labDir: string;
  topology: Topology;
  switchNs?: string;
  persistent: boolean;
  nodes: NodeState[];
  links: LabLink[];
}

interface RegistryEntry {
  id: string;
  prefix: string;
  labDir: string;
  ownerPid: number;
  ownerStart: string | undefined;
  persistent: boolean;
}

const PREFIX_RE = /^[a-z][a-z0-9]{0,9}-$/;
const ID_RE = /^[0-9a-f]{6}$/;

function checkPrefix(prefix: string): void {
  // A short, strict prefix: it is all that keeps cleanup away from other namespaces.
  if (!PREFIX_RE.test(prefix)) throw new Error(`lab prefix ${JSON.stringify(prefix)} must match ${PREFIX_RE}`);
}

function registryPath(prefix: string, id: string): string {
  return join(REGISTRY_DIR, `${prefix}${id}.json`);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  renameSync(tmp, path);
}

function ownerAlive(entry: RegistryEntry): boolean {
  const start = processStartTime(entry.ownerPid);
  return start !== undefined && start === entry.ownerStart;
}

/** Labs of this process that still exist: torn down synchronously if the process exits without destroy(). */
const liveLabs = new Set<Lab>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const lab of liveLabs) lab.destroySync();
  });
  // Ctrl-C or `timeout` (SIGTERM) ends a process without its "exit" event: without this, an
  // interrupted benchmark left its lab's yggdrasil and etcd running, loading every later run.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      for (const lab of liveLabs) lab.destroySync();
      liveLabs.clear();
      process.kill(process.pid, signal);
    });
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(children: readonly ChildProcess[], timeoutMs: number): Promise<void> {
  const pending = children.filter((c) => !exited(c));
  if (pending.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(pending.map((c) => new Promise<void>((r) => (exited(c) ? r() : c.once("exit", () => r()))))),
    new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
  ]);
  clearTimeout(timer);
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || exited(child)) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

export class Lab {
  readonly id: string;
  readonly prefix: string;
  /** The lab's directory: state file and one dir per node. */
  readonly dir: string;
  readonly topology: Topology;
  readonly persistent: boolean;
  /** Bridge namespace of a "full" lab. */
  readonly switchNs: string | undefined;
  /** Wall time of create(), for benchmarks. */
  createMs = 0;

  private readonly nodeStates: NodeState[];
  private readonly linkStates: LabLink[];
  private readonly children = new Map<number, Set<ChildProcess>>();
  private destroyed = false;

  private constructor(state: LabState) {
    this.id = state.id;
    this.prefix = state.prefix;
    this.dir = state.labDir;
    this.topology = state.topology;
    this.persistent = state.persistent;
    this.switchNs = state.switchNs;
    this.nodeStates = state.nodes;
    this.linkStates = state.links;
  }

  get nodes(): readonly LabNode[] {
    return this.nodeStates;
  }

  /** Point-to-point links in creation order (empty for "full"). */
  get links(): readonly LabLink[] {
    return this.linkStates;
  }

  get stateFile(): string {
    return join(this.dir, "lab.json");
  }

  /** Every namespace of the lab, the switch first. */
  get namespaces(): string[] {
    return [...(this.switchNs ? [this.switchNs] : []), ...this.nodeStates.map((n) => n.ns)];
  }

  static async create(opts: LabOptions): Promise<Lab> {
    const started = performance.now();
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    checkPrefix(prefix);
    if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
      throw new RangeError(`nodes must be an integer in 1..${MAX_NODES}, got ${opts.nodes}`);
    }
    const links = topologyLinks(opts.topology, opts.nodes);
    const existing = await listNamespaces();
    let id = "";
    for (let attempt = 0; attempt < 20 && id === ""; attempt++) {
      const candidate = randomBytes(3).toString("hex");
      const taken = existing.some((n) => n.startsWith(`${prefix}${candidate}-`)) || existsSync(registryPath(prefix, candidate));
      if (!taken) id = candidate;
    }
    if (id === "") throw new Error("could not find a free lab id");
    const full = opts.topology === "full";
    const lab = new Lab({
      version: 1,
      id,
      prefix,
      labDir: join(opts.baseDir ?? DEFAULT_BASE_DIR, `${prefix}${id}`),
      topology: opts.topology,
      switchNs: full ? `${prefix}${id}-sw` : undefined,
      persistent: opts.persistent ?? false,
      nodes: [],
      links: [],
    });
    installExitHook();
    liveLabs.add(lab);
    try {
      // Registered before anything exists, so a crash at any later point leaves a traceable owner.
      mkdirSync(REGISTRY_DIR, { recursive: true });
      const entry: RegistryEntry = {
        id,
        prefix,
        labDir: lab.dir,
        ownerPid: process.pid,
        ownerStart: processStartTime(process.pid),
        persistent: lab.persistent,
      };
      writeJsonAtomic(registryPath(prefix, id), entry);
      mkdirSync(lab.dir, { recursive: true });
      const nodes = Array.from({ length: opts.nodes }, (_, i) => lab.newNode(i));
      const newLinks = links.map(([a, b]) => lab.newLink(a, b));
      await lab.build(nodes, newLinks, true);
      lab.saveState();
    } catch (e) {
      await lab.destroy().catch(() => undefined);
      throw e;
    }
    lab.createMs = Math.round(performance.now() - started);
    return lab;
  }

  /** A lab created elsewhere (e.g. by the CLI's `up`), from its state file. */
  static open(id: string, opts: { prefix?: string; baseDir?: string } = {}): Lab {
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    checkPrefix(prefix);
    if (!ID_RE.test(id)) throw new Error(`lab id ${JSON.stringify(id)} is not 6 hex digits`);
    const entry = readJson<RegistryEntry>(registryPath(prefix, id));
    const labDir = entry?.labDir ?? join(opts.baseDir ?? DEFAULT_BASE_DIR, `${prefix}${id}`);
    const state = readJson<LabState>(join(labDir, "lab.json"));
    if (!state || state.id !== id) throw new Error(`no lab ${prefix}${id} (looked for ${join(labDir, "lab.json")})`);
    return new Lab(state);
  }

  node(i: number): LabNode {
    return this.nodeState(i);
  }

  addressOf(i: number, from?: number): string {
    const node = this.nodeState(i);
    if (from !== undefined && from !== i) {
      this.nodeState(from);
      const link = this.findLink(i, from);
      if (link) return link.a === i ? link.addrA : link.addrB;
    }
    const primary = node.addresses[0];
    if (primary === undefined) throw new Error(`${node.name} has no address: it has no links`);
    return primary;
  }

  neighbours(i: number): number[] {
    this.nodeState(i);
    if (this.switchNs) return this.nodeStates.map((n) => n.index).filter((j) => j !== i);
    const out = this.linkStates.flatMap((l) => (l.a === i ? [l.b] : l.b === i ? [l.a] : []));
    return out.sort((x, y) => x - y);
  }

  async exec(i: number, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const node = this.liveNode(i);
    if (argv.length === 0) throw new Error("exec: empty argv");
    const r = await run("ip", ["netns", "exec", node.ns, ...argv], {
      env: this.envFor(node, opts.env),
      cwd: opts.cwd ?? node.home,
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
    });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.failedToStart ?? r.stderr, timedOut: r.timedOut };
  }

  spawn(i: number, argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; label?: string; cwd?: string } = {}): ChildProcess {
    const node = this.liveNode(i);
    const program = argv[0];
    if (program === undefined) throw new Error("spawn: empty argv");
    const label = (opts.label ?? basename(program)).replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100) || "process";
    const logs = join(node.dir, "logs");
    mkdirSync(logs, { recursive: true });
    const logPath = join(logs, `${label}.log`);
    appendFileSync(logPath, `--- ${new Date().toISOString()} ${JSON.stringify(argv)}\n`);
    const fd = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      // Own process group: killing the group also takes whatever the program forked.
      child = spawnChild("ip", ["netns", "exec", node.ns, ...argv], {
        env: this.envFor(node, opts.env),
        cwd: opts.cwd ?? node.home,
        stdio: ["ignore", fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    let set = this.children.get(i);
    if (!set) this.children.set(i, (set = new Set()));
    set.add(child);
    child.once("exit", () => set.delete(child));
    // Without a listener a failed start would crash the test process.
    child.on("error", (e) => appendFileSync(logPath, `--- spawn failed: ${e.message}\n`));
    return child;
  }

  async cutLink(a: number, b: number): Promise<void> {
    await this.setLink(this.requireLink("cutLink", a, b), "down");
  }

  async restoreLink(a: number, b: number): Promise<void> {
    await this.setLink(this.requireLink("restoreLink", a, b), "up");
  }

  /**
   * Takes node i off the network. "full": its switch port goes down, so the node's own interface
   * loses carrier but keeps its address, like a pulled cable. Otherwise: every link of i is cut.
   */
  async unplug(i: number): Promise<void> {
    await this.setNodePlugged(i, "down");
  }

  /** Undoes unplug(i); on point-to-point topologies this restores every link of i. */
  async plug(i: number): Promise<void> {
    await this.setNodePlugged(i, "up");
  }

  /** SIGKILLs every process in node i's namespace; the node stays on the network and usable. */
  async killNode(i: number): Promise<void> {
    const node = this.liveNode(i);
    const tracked = [...(this.children.get(i) ?? [])];
    tracked.forEach(killGroup);
    const left = await killNamespaceProcesses([node.ns]);
    await waitExit(tracked, 2_000);
    if (left.length > 0) throw new Error(`killNode(${i}): pids ${left.join(", ")} in ${node.ns} survived SIGKILL`);
  }

  /**
   * Adds node n (= nodes.length). "full": on the shared segment, attachTo is ignored. "line":
   * linked to the last node, "tree": to its parent, unless attachTo says otherwise; a custom
   * topology needs attachTo.
   */
  async addNode(attachTo?: number[]): Promise<LabNode> {
    this.checkAlive();
    const i = this.nodeStates.length;
    if (i >= MAX_NODES) throw new RangeError(`a lab holds at most ${MAX_NODES} nodes`);
    let targets: number[] = [];
    if (!this.switchNs) {
      if (attachTo !== undefined) targets = attachTo;
      else if (this.topology === "line") targets = [i - 1];
      else if (this.topology === "tree") targets = [parentInTree(i)];
      else throw new Error("addNode: a custom topology needs attachTo");
      const seen = new Set<string>();
      for (const t of targets) checkLink(t, i, i + 1, seen);
    }
    const nodeCount = this.nodeStates.length;
    const linkCount = this.linkStates.length;
    const node = this.newNode(i);
    const links = targets.map((t) => this.newLink(t, i));
    try {
      await this.build([node], links, false);
    } catch (e) {
      // Leave the lab as it was: the new namespace takes its veths (and their far ends) with it.
      await killNamespaceProcesses([node.ns]);
      await deleteNamespaces([node.ns]);
      this.nodeStates.length = nodeCount;
      this.linkStates.length = linkCount;
      for (const t of targets) this.nodeStates[t]?.addresses.pop();
      rmSync(node.dir, { recursive: true, force: true });
      throw e;
    }
    this.saveState();
    return node;
  }

  /**
   * Kills every process in the lab's namespaces, deletes the namespaces (and with them every
   * veth and the bridge), the lab directory and its registry entry. Safe to call twice.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const problems: string[] = [];
    const tracked = [...this.children.values()].flatMap((s) => [...s]);
    tracked.forEach(killGroup);
    // By name as well as by record: a create() that failed half way may have made more than it recorded.
    const mine = (names: string[]) => names.filter((n) => n.startsWith(`${this.prefix}${this.id}-`));
    const namespaces = [...new Set([...this.namespaces, ...mine(await listNamespaces())])];
    const left = await killNamespaceProcesses(namespaces);
    if (left.length > 0) problems.push(`pids ${left.join(", ")} survived SIGKILL`);
    await deleteNamespaces(namespaces);
    await waitExit(tracked, 2_000);
    this.keepLogs();
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(registryPath(this.prefix, this.id), { force: true });
    liveLabs.delete(this);
    const remaining = mine(await listNamespaces());
    if (remaining.length > 0) problems.push(`namespaces left: ${remaining.join(", ")}`);
    if (problems.length > 0) throw new Error(`destroying lab ${this.id}: ${problems.join("; ")}`);
  }

  /**
   * Copies every node's process logs (`logs/`) and agent logs (`<cache dir>/node/log`) to
   * `<dir>/<node name>/[<sub>/]lab/` and `…/node/`: a failed run's whole story, not only the
   * lines a test prints. Best effort: a copy that fails is reported on stderr, never thrown.
   */
  copyLogs(dir: string, sub = ""): void {
    for (const node of this.nodes) {
      for (const [from, name] of [
        [join(node.dir, "logs"), "lab"],
        [join(node.cacheDir, "node", "log"), "node"],
      ] as const) {
        try {
          if (existsSync(from)) cpSync(from, join(dir, node.name, sub, name), { recursive: true });
        } catch (e) {
          process.stderr.write(`lab ${this.id}: copying ${node.name}'s ${name} logs failed: ${String(e)}\n`);
        }
      }
    }
  }

  /** With RAPTIFORMICA_LAB_KEEP_LOGS=<dir> set, copyLogs(<dir>/<lab id>) (destroy calls it first). */
  private keepLogs(): void {
    const to = process.env["RAPTIFORMICA_LAB_KEEP_LOGS"];
    if (to) this.copyLogs(join(to, this.id));
  }

  /** Best-effort destroy() for a process that is exiting without having called it. */
  destroySync(): void {
    if (this.destroyed || this.persistent) return;
    this.destroyed = true;
    for (const set of this.children.values()) set.forEach(killGroup);
    let names: string[] = [];
    try {
      names = readdirSync(NETNS_RUN_DIR).filter((n) => n.startsWith(`${this.prefix}${this.id}-`));
    } catch {
      // no namespaces at all
    }
    const namespaces = [...new Set([...this.namespaces, ...names])];
    killNamespaceProcessesSync(namespaces);
    deleteNamespacesSync(namespaces);
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(registryPath(this.prefix, this.id), { force: true });
    liveLabs.delete(this);
  }

  private nodeState(i: number): NodeState {
    const node = Number.isInteger(i) ? this.nodeStates[i] : undefined;
    if (!node) throw new RangeError(`no node ${i} (nodes 0..${this.nodeStates.length - 1})`);
    return node;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new Error(`lab ${this.id} is destroyed`);
  }

  private liveNode(i: number): NodeState {
    this.checkAlive();
    return this.nodeState(i);
  }

  private findLink(x: number, y: number): LabLink | undefined {
    const [a, b] = x < y ? [x, y] : [y, x];
    return this.linkStates.find((l) => l.a === a && l.b === b);
  }

  private requireLink(op: string, a: number, b: number): LabLink {
    this.checkAlive();
    this.nodeState(a);
    this.nodeState(b);
    if (this.switchNs) {
      throw new Error(`${op}(${a}, ${b}): a "full" lab is one shared segment; cut a node off it with unplug(i), not a pair`);
    }
    const link = this.findLink(a, b);
    if (!link) throw new Error(`${op}(${a}, ${b}): nodes ${a} and ${b} share no link`);
    return link;
  }

  private async setLink(link: LabLink, state: "up" | "down"): Promise<void> {
    // Both ends: each side then has no route to the other, symmetric, and addresses stay put.
    const nsA = this.nodeState(link.a).ns;
    const nsB = this.nodeState(link.b).ns;
    await Promise.all([
      ip(["-n", nsA, "link", "set", "dev", link.ifA, state]),
      ip(["-n", nsB, "link", "set", "dev", link.ifB, state]),
    ]);
  }

  private async setNodePlugged(i: number, state: "up" | "down"): Promise<void> {
    this.liveNode(i);
    if (this.switchNs) {
      await ip(["-n", this.switchNs, "link", "set", "dev", `n${i}`, state]);
      return;
    }
    await Promise.all(this.linkStates.filter((l) => l.a === i || l.b === i).map((l) => this.setLink(l, state)));
  }

  private envFor(node: NodeState, extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
    // Only what the node should see, like `env -i`: nothing of the test runner leaks in.
    const env: NodeJS.ProcessEnv = {
      HOME: node.home,
      RAPTIFORMICA_CACHE_DIR: node.cacheDir,
      // Lab nodes share the host's /etc: each keeps its member names in a file of its own.
      RAPTIFORMICA_HOSTS_FILE: join(node.dir, "hosts"),
      PATH: process.env["PATH"] ?? DEFAULT_PATH,
    };
    for (const [k, v] of Object.entries(extra ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return env;
  }

  private newNode(i: number): NodeState {
    const name = `n${i}`;
    const dir = join(this.dir, name);
    const home = join(dir, "home");
    const node: NodeState = {
      index: i,
      name,
      ns: `${this.prefix}${this.id}-${name}`,
      dir,
      home,
      cacheDir: join(home, ".raptiformica.d"),
      addresses: this.switchNs ? [segmentAddress(i)] : [],
    };
    mkdirSync(node.cacheDir, { recursive: true });
    mkdirSync(join(dir, "logs"), { recursive: true });
    this.nodeStates.push(node);
    return node;
  }

  private newLink(x: number, y: number): LabLink {
    const [a, b] = x < y ? [x, y] : [y, x];
    const [addrA, addrB] = linkAddresses(this.linkStates.length);
    const link: LabLink = { a, ifA: `to-n${b}`, addrA, b, ifB: `to-n${a}`, addrB };
    this.linkStates.push(link);
    this.nodeState(a).addresses.push(addrA);
    this.nodeState(b).addresses.push(addrB);
    return link;
  }

  /**
   * Creates the namespaces of `nodes` and the veths of `links` (plus the switch and the nodes'
   * ports on it for "full"), then configures each namespace. One host-side `ip -batch` does all
   * creation (veths are born inside their namespaces), then one `ip -n NS -batch` per namespace.
   */
  private async build(nodes: readonly NodeState[], links: readonly LabLink[], withSwitch: boolean): Promise<void> {
    const sw = this.switchNs;
    const host: string[] = [];
    if (sw && withSwitch) {
      host.push(`netns add ${sw}`, `netns exec ${sw} sysctl -q -w ${SWITCH_SYSCTLS.join(" ")}`);
      host.push(`link add name ${BRIDGE} netns ${sw} type bridge forward_delay 0 stp_state 0 mcast_snooping 0`);
    }
    // sysctls before any interface exists, so the "default" values apply to them.
    for (const n of nodes) host.push(`netns add ${n.ns}`, `netns exec ${n.ns} sysctl -q -w ${NODE_SYSCTLS.join(" ")}`);
    if (sw) {
      for (const n of nodes) host.push(`link add name n${n.index} netns ${sw} type veth peer name ${SEGMENT_IF} netns ${n.ns}`);
    }
    for (const l of links) {
      host.push(
        `link add name ${l.ifA} netns ${this.nodeState(l.a).ns} type veth peer name ${l.ifB} netns ${this.nodeState(l.b).ns}`,
      );
    }
    await ipBatch(host);

    const perNs = new Map<string, string[]>();
    const add = (ns: string, ...lines: string[]) => perNs.set(ns, [...(perNs.get(ns) ?? []), ...lines]);
    for (const n of nodes) add(n.ns, "link set dev lo up");
    if (sw) {
      for (const n of nodes) {
        add(n.ns, `address add ${segmentAddress(n.index)}/${SEGMENT_PREFIX_LEN} dev ${SEGMENT_IF}`, `link set dev ${SEGMENT_IF} up`);
        add(sw, `link set dev n${n.index} master ${BRIDGE}`, `link set dev n${n.index} up`);
      }
      if (withSwitch) add(sw, `link set dev ${BRIDGE} up`);
    }
    for (const l of links) {
      add(this.nodeState(l.a).ns, `address add ${l.addrA}/${LINK_PREFIX_LEN} dev ${l.ifA}`, `link set dev ${l.ifA} up`);
      add(this.nodeState(l.b).ns, `address add ${l.addrB}/${LINK_PREFIX_LEN} dev ${l.ifB}`, `link set dev ${l.ifB} up`);
    }
    await mapLimit([...perNs], SETUP_CONCURRENCY, ([ns, lines]) => ipBatch(lines, { ns }));
  }

  private saveState(): void {
    const state: LabState = {
      version: 1,
      id: this.id,
      prefix: this.prefix,
      labDir: this.dir,
      topology: this.topology,
      switchNs: this.switchNs,
      persistent: this.persistent,
      nodes: this.nodeStates,
      links: this.linkStates,
    };
    writeJsonAtomic(this.stateFile, state);
  }
}

export interface LabSummary {
  id: string;
  namespaces: string[];
  labDir: string | undefined;
  owner: "this process" | "alive" | "dead" | "persistent" | "unknown";
}

/** Every lab with `prefix` that has namespaces, a registry entry or a directory in the default base dir. */
export async function listLabs(prefix = DEFAULT_PREFIX): Promise<LabSummary[]> {
  checkPrefix(prefix);
  const nsRe = new RegExp(`^${prefix}([0-9a-f]{6})-(?:sw|n\\d+)$`);
  const dirRe = new RegExp(`^${prefix}([0-9a-f]{6})(?:\\.json)?$`);
  const labs = new Map<string, LabSummary>();
  const get = (id: string) => {
    let s = labs.get(id);
    if (!s) labs.set(id, (s = { id, namespaces: [], labDir: undefined, owner: "unknown" }));
    return s;
  };
  for (const ns of await listNamespaces()) {
    const id = nsRe.exec(ns)?.[1];
    if (id) get(id).namespaces.push(ns);
  }
  for (const dir of [REGISTRY_DIR, DEFAULT_BASE_DIR]) {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const e of entries) {
      const id = dirRe.exec(e)?.[1];
      if (id) get(id);
    }
  }
  for (const s of labs.values()) {
    const entry = readJson<RegistryEntry>(registryPath(prefix, s.id));
    const mineHere = [...liveLabs].some((l) => l.prefix === prefix && l.id === s.id);
    s.labDir = entry?.labDir ?? (existsSync(join(DEFAULT_BASE_DIR, `${prefix}${s.id}`)) ? join(DEFAULT_BASE_DIR, `${prefix}${s.id}`) : undefined);
    if (mineHere) s.owner = "this process";
    else if (!entry) s.owner = "unknown";
    else if (entry.persistent) s.owner = "persistent";
    else s.owner = ownerAlive(entry) ? "alive" : "dead";
  }
  return [...labs.values()].sort((x, y) => x.id.localeCompare(y.id));
}

/**
 * Removes leftovers of crashed runs: labs with `prefix` whose owning process is gone (or that
 * have no owner record). Labs of live processes, including this one, and persistent (CLI) labs
 * are kept unless `all` is set. Returns the ids removed.
 */
export async function cleanupStaleLabs(prefix = DEFAULT_PREFIX, opts: { all?: boolean } = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const lab of await listLabs(prefix)) {
    const stale = lab.owner === "dead" || lab.owner === "unknown";
    if (!stale && !opts.all) continue;
    const own = [...liveLabs].find((l) => l.prefix === prefix && l.id === lab.id);
    if (own) {
      await own.destroy();
    } else {
      await killNamespaceProcesses(lab.namespaces);
      await deleteNamespaces(lab.namespaces);
      // Only a directory named like the lab: a corrupt registry entry must not point rm elsewhere.
      if (lab.labDir && basename(lab.labDir) === `${prefix}${lab.id}`) rmSync(lab.labDir, { recursive: true, force: true });
      rmSync(registryPath(prefix, lab.id), { force: true });
    }
    removed.push(lab.id);
  }
  return removed;
}
