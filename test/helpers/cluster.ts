import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Lab, waitFor } from "../lab/index.ts";
import { BIN, ROOT } from "./cli.ts";

/**
 * Plays the operator in the lab: what `slave` does over SSH, done with `ip netns exec`.
 * For a new node: read its identity, register it on a member (`inject --key`), hand it the
 * cluster's config, record how it is reached (`advertise`), then `mesh`.
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
