/**
 * The chaos run's client workload on every member of a lab cluster, recorded for the checks:
 *
 * - an etcd3 client on each member's local endpoint (test/chaos/workload-client.ts, started in
 *   the member's namespace, logging to `<node dir>/logs/chaos-workload.log`); started again
 *   (a new incarnation, so its values stay unique) whenever it exits — a member killed whole
 *   takes its applications with it;
 * - `config set` / `config get` through the CLI on each member, one at a time per member, every
 *   `cliEveryMs` on average, on their own keys (the etcd3 clients read those keys too).
 *
 * Bounded: the clients start at most one operation per `everyMs` with a cap on what is in
 * flight; the CLI loops run one process at a time per member.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LabCluster } from "../helpers/cluster.ts";
import { ROOT } from "../helpers/cli.ts";
import { sleep } from "../lab/index.ts";
import { cliOperation, parseWorkloadLog, type RecordedOp } from "./history.ts";
import { mulberry32, pick, seedFor } from "./prng.ts";

export interface WorkloadOptions {
  readonly seed: number;
  /** Register keys the etcd3 clients write and read. */
  readonly keys: readonly string[];
  /** Keys (without the raptiformica/ prefix) the CLI sets and gets; the etcd3 clients read them too. */
  readonly cliKeys: readonly string[];
  /** Prefix of the keys each written once (the lost-write check). */
  readonly oncePrefix: string;
  /** etcd3 client: one operation started per this many ms. */
  readonly everyMs: number;
  /** CLI: mean pause between runs on one member, ms. */
  readonly cliEveryMs: number;
}

export const DEFAULT_WORKLOAD: Omit<WorkloadOptions, "seed"> = {
  keys: ["chaos/r0", "chaos/r1", "chaos/r2"],
  cliKeys: ["chaos/c0", "chaos/c1"],
  oncePrefix: "chaos/once/",
  everyMs: 100,
  cliEveryMs: 4000,
};

const LABEL = "chaos-workload";
const CLIENT = join(ROOT, "test", "chaos", "workload-client.ts");

export class Workload {
  private readonly clients = new Map<number, ChildProcess>();
  private readonly incarnations = new Map<number, number>();
  private readonly cliOps: RecordedOp[] = [];
  private cliLoops: Promise<void>[] = [];
  private stopping = false;
  /** `config get` runs answered from a member's cached copy (not checked: stale by design). */
  cachedReads = 0;

  constructor(
    private readonly c: LabCluster,
    readonly opts: WorkloadOptions,
  ) {}

  private get members(): number[] {
    return this.c.lab.nodes.map((n) => n.index);
  }

  private logPath(i: number): string {
    return join(this.c.lab.nodes[i]!.dir, "logs", `${LABEL}.log`);
  }

  private spawnClient(i: number): void {
    if (this.stopping) return;
    try {
      this.startClient(i);
    } catch (e) {
      // The lab is going away under a run that failed: nothing to start any more.
      process.stderr.write(`chaos workload: n${i}'s client not started: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }

  private startClient(i: number): void {
    const incarnation = this.incarnations.get(i) ?? 0;
    this.incarnations.set(i, incarnation + 1);
    const node = this.c.lab.nodes[i]!;
    const o = this.opts;
    const child = this.c.lab.spawn(
      i,
      [
        process.execPath,
        "--import",
        "tsx",
        CLIENT,
        "--tls-dir",
        join(node.cacheDir, "node", "etcd", "tls"),
        "--member",
        node.name,
        "--incarnation",
        String(incarnation),
        "--seed",
        String(o.seed),
        "--keys",
        o.keys.join(","),
        "--read-keys",
        o.cliKeys.map((k) => `raptiformica/${k}`).join(","),
        "--once-prefix",
        o.oncePrefix,
        "--every",
        String(o.everyMs),
      ],
      { label: LABEL, cwd: ROOT },
    );
    this.clients.set(i, child);
    child.once("exit", () => {
      if (this.clients.get(i) === child) this.clients.delete(i);
      // Its member was killed (or it crashed): the application starts again, as on a real machine.
      if (!this.stopping) setTimeout(() => this.spawnClient(i), 1000).unref();
    });
  }

  private async cliLoop(i: number): Promise<void> {
    const rand = mulberry32(seedFor(this.opts.seed, `cli.${i}`));
    const name = this.c.lab.nodes[i]!.name;
    for (let n = 0; !this.stopping; n++) {
      await sleep(this.opts.cliEveryMs * (0.5 + rand()));
      if (this.stopping) break;
      const key = pick(rand, this.opts.cliKeys);
      const write = rand() < 0.5;
      const ref = `${name}.cli.${n}`;
      const invoke = Date.now();
      const r = await this.c.rf(i, write ? ["config", "set", key, ref] : ["config", "get", key], 30_000).catch((e: unknown) => ({
        exitCode: -1,
        stdout: "",
        stderr: e instanceof Error ? e.message : String(e),
      }));
      const complete = Date.now();
      const { op, cached } = cliOperation(
        { ref, process: `${name}/cli`, key: `raptiformica/${key}`, f: write ? "write" : "read", ...(write ? { value: ref } : {}), invoke, complete },
        r,
      );
      if (cached) this.cachedReads++;
      this.cliOps.push(op);
    }
  }

  /** Starts the clients and the CLI loops on every member. */
  start(): void {
    for (const i of this.members) this.spawnClient(i);
    this.cliLoops = this.members.map((i) => this.cliLoop(i));
  }

  /** Waits until every member's client has had `n` answers (bounded by `timeoutMs`). @throws Error naming the members that did not. */
  async waitAnswering(n: number, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    let slow: number[] = [];
    while (Date.now() < until) {
      slow = this.members.filter((i) => this.answers(i).length < n);
      if (slow.length === 0) return;
      await sleep(200);
    }
    throw new Error(`the workload clients of ${slow.map((i) => `n${i}`).join(", ")} got fewer than ${n} answers within ${timeoutMs} ms (see ${this.logPath(slow[0]!)})`);
  }

  private parsed(i: number): ReturnType<typeof parseWorkloadLog> {
    let text = "";
    try {
      text = readFileSync(this.logPath(i), "utf8");
    } catch {
      // not started yet
    }
    return parseWorkloadLog(text, `${this.c.lab.nodes[i]!.name}/etcd3`);
  }

  private answers(i: number): number[] {
    return this.parsed(i).answers;
  }

  /** Stops the CLI loops and the clients (SIGTERM: they finish what is in flight). Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.cliLoops);
    const children = [...this.clients.values()];
    await Promise.all(
      children.map(
        (ch) =>
          new Promise<void>((resolve) => {
            if (ch.exitCode !== null || ch.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              ch.kill("SIGKILL");
              resolve();
            }, 10_000);
            ch.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            ch.kill("SIGTERM");
          }),
      ),
    );
  }

  /** Everything recorded: operations of every client and CLI run, each member's answer times. */
  collect(): { recorded: RecordedOp[]; answers: Map<string, number[]> } {
    const recorded: RecordedOp[] = [...this.cliOps];
    const answers = new Map<string, number[]>();
    for (const i of this.members) {
      const p = this.parsed(i);
      recorded.push(...p.ops);
      answers.set(this.c.lab.nodes[i]!.name, p.answers);
    }
    return { recorded, answers };
  }

  /**
   * Every key under the once-prefix as member `i` reads it now (a linearizable range read on its
   * local endpoint, retried up to 60 s). @throws Error when it never answers.
   */
  async readOnceKeys(i: number): Promise<Record<string, string>> {
    const node = this.c.lab.nodes[i]!;
    const r = await this.c.lab.exec(
      i,
      [process.execPath, "--import", "tsx", CLIENT, "dump", "--tls-dir", join(node.cacheDir, "node", "etcd", "tls"), "--prefix", this.opts.oncePrefix, "--seconds", "60"],
      { cwd: ROOT, timeoutMs: 90_000 },
    );
    const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
    if (r.exitCode !== 0 || !line) throw new Error(`reading ${this.opts.oncePrefix}* on ${node.name} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
    return (JSON.parse(line) as { keys: Record<string, string> }).keys;
  }
}
