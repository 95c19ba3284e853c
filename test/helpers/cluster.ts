import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Lab, waitFor } from "../lab/index.ts";
import { BIN, ROOT } from "./cli.ts";

/**
 * Plays the operator in the lab: what `slave` does over SSH, done with `ip netns exec`.
 * For a new node: read its identity, register it on a member (`inject --key`), hand it the
 * cluster's config, record how it is reached (`advertise`), then `mesh`.
 */
/** Runs fn over items, at most `limit` at once. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

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

  /** The first node: nothing to join, it bootstraps the cluster. */
  async first(i = 0): Promise<void> {
    await this.rfOk(i, ["advertise", this.lab.addressOf(i)]);
    await this.rfOk(i, ["mesh", "--no-after-mesh"]);
  }

  async identity(i: number): Promise<{ publicKey: string; meshAddress: string }> {
    return JSON.parse(await this.rfOk(i, ["identity", "--json"])) as { publicKey: string; meshAddress: string };
  }

  /** Brings node i in through member `via`. */
  async join(i: number, via = 0): Promise<void> {
    await this.prepare(i, via);
    await this.rfOk(i, ["mesh", "--no-after-mesh"]);
  }

  /** Everything but `mesh`: for tests that start several nodes at once. */
  async prepare(i: number, via = 0): Promise<void> {
    const id = await this.identity(i);
    const host = this.lab.addressOf(i, via);
    await this.rfOk(via, ["inject", host, "--key", id.publicKey]);
    const from = join(this.lab.nodes[via]!.cacheDir, "mutable_config.json");
    const to = join(this.lab.nodes[i]!.cacheDir, "mutable_config.json");
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    copyFileSync(from, to);
    await this.rfOk(i, ["advertise", host]);
  }

  /**
   * `prepare` for many nodes at once, for benchmarks at scale: identities `concurrency` at a
   * time, one KV update on `via` registering them all (bench/lib/seed-neighbours.ts, instead of
   * one `inject` process each), then config copy and `advertise` per node; `onReady(i)` fires
   * as each node is ready for `mesh`. Throws on the first failure.
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
