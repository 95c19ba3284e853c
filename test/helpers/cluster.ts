import { copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { assimilate, enlist, registerViaMembers, type Enlistment } from "../../src/ops/assimilate.ts";
import type { NodeChannel } from "../../src/ops/cluster/node-channel.ts";
import type { Outcome } from "../../src/util/exec.ts";
import { createLogger } from "../../src/util/log.ts";
import { Lab, waitFor } from "../lab/index.ts";
import { BIN, ROOT } from "./cli.ts";

/**
 * A lab node as the operator reaches it: its raptiformica CLI run in its network namespace
 * (`ip netns exec`, its own HOME and cache dir), files written straight into its cache dir (a
 * namespace separates only the network; the file system is this machine's).
 */
export class LabNodeChannel implements NodeChannel {
  constructor(
    private readonly cluster: LabCluster,
    readonly index: number,
  ) {}

  get who(): string {
    return this.cluster.lab.nodes[this.index]?.name ?? `n${this.index}`;
  }

  run(argv: readonly string[], timeoutMs: number): Promise<Outcome> {
    return this.cluster.rf(this.index, [...argv], timeoutMs);
  }

  async writeCacheFile(name: string, content: string, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    const path = join(this.cluster.lab.nodes[this.index]!.cacheDir, name);
    if (opts.onlyIfAbsent && existsSync(path)) return false;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
    return true;
  }
}

/** Runs fn over items, at most `limit` at once. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Plays the operator in the lab: a node joins through the same assimilate code as `slave`
 * (ops/assimilate.ts), its channel being `ip netns exec` instead of SSH: `advertise`, its
 * identity, `inject --key` on a member through the Cluster interface (a ViaMember over that
 * member's channel), the member's config handed to it, then `mesh`.
 */
/**
 * Directories the lab's members look in for programs before the system's: RAPTIFORMICA_LAB_PATH
 * (colon-separated), so a test or benchmark runs on other yggdrasil / etcd builds than the
 * machine's own without a change to its code — e.g. Yggdrasil 0.5 and etcd 3.5 from
 * scripts/fetch-yggdrasil-0.5.sh and scripts/fetch-etcd-3.5.sh. Empty when unset.
 */
export function labPathDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env["RAPTIFORMICA_LAB_PATH"] ?? "").split(":").filter((d) => d !== "");
}

/** The PATH of a lab member: raptiformica's bin/, then RAPTIFORMICA_LAB_PATH, then ours. */
export function labMemberPath(env: NodeJS.ProcessEnv = process.env): string {
  return [join(ROOT, "bin"), ...labPathDirs(env), env["PATH"] ?? ""].join(":");
}

/** How `LabCluster.form` brings a cluster up; every field is optional. */
export interface FormOptions {
  /** Cluster settings set on node 0 before the others come in: `config set` key → value. */
  readonly config?: Readonly<Record<string, string>>;
  /** "one-by-one" (default): each node's `join` in turn; "together": all prepared, then meshed at once. */
  readonly joins?: "one-by-one" | "together";
  /** Whom each node registers through: node 0 (default) or the node before it. */
  readonly via?: "first" | "previous";
  /** Also wait for exactly this many alive voters (voter or leader) seen from node 0. */
  readonly voters?: number;
  /** ms to wait for all n alive (default 60 000). */
  readonly aliveTimeoutMs?: number;
  /** ms each "together" `mesh` run may take (default 180 000). */
  readonly meshTimeoutMs?: number;
  /** ms to wait for `voters` (default 120 000). */
  readonly votersTimeoutMs?: number;
}

export class LabCluster {
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly lab: Lab,
    extraEnv: NodeJS.ProcessEnv = {},
  ) {
    this.env = { PATH: labMemberPath(), ...extraEnv };
  }

  async rf(i: number, args: string[], timeoutMs = 120_000) {
    return this.lab.exec(i, [BIN, ...args], { env: { ...this.env, RAPTIFORMICA_NODE_NAME: this.lab.nodes[i]?.name ?? `n${i}` }, timeoutMs });
  }

  async rfOk(i: number, args: string[], timeoutMs = 120_000): Promise<string> {
    const r = await this.rf(i, args, timeoutMs);
    if (r.exitCode !== 0) {
      throw new Error(`n${i}: raptiformica ${args.join(" ")} exited ${r.exitCode}${r.timedOut ? " (timed out)" : ""}:\n${r.stderr}\n${r.stdout}`);
    }
    return r.stdout;
  }

  channel(i: number): LabNodeChannel {
    return new LabNodeChannel(this, i);
  }

  /** The first node: nothing to register with and no config to hand it, it starts the cluster. */
  async first(i = 0): Promise<void> {
    await assimilate({ ...this.enlistment(i, { register: async () => undefined }), afterMesh: false });
  }

  async identity(i: number): Promise<{ publicKey: string; meshAddress: string }> {
    return JSON.parse(await this.rfOk(i, ["identity", "--json"])) as { publicKey: string; meshAddress: string };
  }

  /** Brings node i in through member `via`. */
  async join(i: number, via = 0): Promise<void> {
    await assimilate({ ...this.enlistment(i, { via }), afterMesh: false });
  }

  /** Everything but `mesh`: for tests that start several nodes at once. */
  async prepare(i: number, via = 0): Promise<void> {
    await enlist(this.enlistment(i, { via }));
  }

  /**
   * Node i reached on its address as `via` sees it (SSH port 22, what `advertise` and `inject`
   * default to), registered through `via` unless `register` is given; a lab node is new, so the
   * config it is handed replaces whatever its cache dir holds.
   */
  private enlistment(i: number, o: { via?: number; register?: Enlistment["register"] }): Enlistment {
    const via = o.via ?? i;
    return {
      node: this.channel(i),
      reach: { host: this.lab.addressOf(i, via), port: 22 },
      register: o.register ?? registerViaMembers([this.channel(via)], { newcomer: this.channel(i).who, log: createLogger(false) }),
      keepOwnConfig: false,
    };
  }

  /**
   * `prepare` for many nodes at once, for benchmarks at scale: identities `concurrency` at a
   * time, one KV update on `via` registering them all (bench/lib/seed-neighbours.ts, instead of
   * one `inject` process each), then config copy and `advertise` per node; `onReady(i)` fires
   * as each node is ready for `mesh`. Throws on the first failure.
   *
   * Not the shared `enlist`: that registers one node per member round trip (an `inject` and a
   * `config show` process on the member each, ~2 s of CPU under load), and at dozens of nodes on
   * a small machine that operator work, not the cluster forming, is what a benchmark would
   * measure. `prepare` (and `bench/scale.ts --inject-one-by-one`) is the shared path.
   */
  async prepareMany(indices: readonly number[], concurrency: number, onReady: (i: number) => void, via = 0): Promise<void> {
    const keys = new Map<number, string>();
    await pool(indices, concurrency, async (i) => {
      keys.set(i, (await this.identity(i)).publicKey);
    });
    const wanted = indices.map((i) => ({ host: this.lab.addressOf(i, via), publicKey: keys.get(i) as string }));
    const r = await this.lab.exec(via, [process.execPath, "--import", "tsx", join(ROOT, "bench", "lib", "seed-neighbours.ts")], {
      env: { ...this.env, RAPTIFORMICA_HOME: ROOT },
      cwd: ROOT,
      input: JSON.stringify(wanted),
      timeoutMs: 120_000,
    });
    if (r.exitCode !== 0) throw new Error(`seeding ${indices.length} neighbours on n${via} exited ${r.exitCode}:\n${r.stderr}`);
    const from = join(this.lab.nodes[via]!.cacheDir, "mutable_config.json");
    await pool(indices, concurrency, async (i) => {
      const to = join(this.lab.nodes[i]!.cacheDir, "mutable_config.json");
      mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
      copyFileSync(from, to);
      await this.rfOk(i, ["advertise", this.lab.addressOf(i, via)]);
      onReady(i);
    });
  }

  /**
   * Forms a cluster of nodes 0..n-1 of the lab (a lab may hold more, for nodes that join later):
   * node 0 starts it (`first`), each `opts.config` entry is set on it with `config set KEY VALUE`
   * before anyone else comes in, then the others come in — `joins: "one-by-one"` (the default):
   * each `join`s, its `mesh` done before the next is registered; `"together"`: each is
   * `prepare`d in turn, then all their `mesh --no-after-mesh` runs go at once. Each registers
   * through node 0, or through the node before it with `via: "previous"` (for line topologies).
   * Then waits until node 0 sees n members alive and, with `opts.voters`, exactly that many alive
   * voters (role voter or leader).
   *
   * Timeouts in ms: `aliveTimeoutMs` (default 60 000), `meshTimeoutMs` for each "together" mesh
   * run (default 180 000), `votersTimeoutMs` (default 120 000).
   *
   * Returns this cluster. Throws on the first failed step: a CLI run that exits non-zero (with
   * its output), or a wait that times out (naming what it waited for and what it last saw).
   */
  async form(n: number, opts: FormOptions = {}): Promise<this> {
    if (n < 1 || n > this.lab.nodes.length) throw new Error(`form(${n}): the lab has ${this.lab.nodes.length} nodes`);
    await this.first(0);
    for (const [key, value] of Object.entries(opts.config ?? {})) await this.rfOk(0, ["config", "set", key, value]);
    const others = Array.from({ length: n - 1 }, (_, k) => k + 1);
    const via = (i: number) => (opts.via === "previous" ? i - 1 : 0);
    if (opts.joins === "together") {
      for (const i of others) await this.prepare(i, via(i));
      await Promise.all(others.map((i) => this.rfOk(i, ["mesh", "--no-after-mesh"], opts.meshTimeoutMs ?? 180_000)));
    } else {
      for (const i of others) await this.join(i, via(i));
    }
    await this.waitAlive(0, n, opts.aliveTimeoutMs ?? 60_000);
    const want = opts.voters;
    if (want !== undefined) {
      await waitFor(
        `${want} alive voters seen from n0`,
        async () => {
          const m = await this.members(0);
          const voters = m.members.filter((x) => x.status === "alive" && (x.role === "voter" || x.role === "leader"));
          if (voters.length !== want) throw new Error(`${voters.length} voters: ${JSON.stringify(m.members.map((x) => [x.name, x.status, x.role]))}`);
          return true;
        },
        { timeoutMs: opts.votersTimeoutMs ?? 120_000, intervalMs: 500 },
      );
    }
    return this;
  }

  async members(i: number): Promise<{ quorum: boolean; members: { name: string; status: string; role?: string; meshAddress: string }[] }> {
    const r = await this.rf(i, ["members", "--json"], 30_000);
    return JSON.parse(r.stdout);
  }

  async waitAlive(i: number, count: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${count} alive members seen from n${i}`,
      async () => {
        const m = await this.members(i);
        const alive = m.members.filter((x) => x.status === "alive").length;
        if (alive !== count) throw new Error(`${alive} alive: ${JSON.stringify(m.members.map((x) => [x.name, x.status, x.role]))}`);
        return true;
      },
      { timeoutMs, intervalMs: 300 },
    );
  }
}
