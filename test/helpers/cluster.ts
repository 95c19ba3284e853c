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
export class LabCluster {
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly lab: Lab,
    extraEnv: NodeJS.ProcessEnv = {},
  ) {
    this.env = { PATH: `${join(ROOT, "bin")}:${process.env["PATH"]}`, ...extraEnv };
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
