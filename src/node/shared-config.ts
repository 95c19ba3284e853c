import { existsSync } from "node:fs";
import type { Etcd3 } from "etcd3";
import { describeUnusableKey, type FlatMapping, type UnusableKey } from "../config/flatten.ts";
import type { LocalConfig } from "../config/local.ts";
import { mappingProblem } from "../config/store.ts";
import { UserError } from "../util/errors.ts";
import { PendingChanges, diffOps, type PendingOp } from "../config/pending.ts";
import { openClient, readOnceMoreIfDropped } from "../consensus/client.ts";
import { readKvConfig, updateKvMapping, type KvChange } from "../consensus/kv-config.ts";
import { clientUrl, neighbourEndpoints } from "../consensus/etcd-args.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { NodePaths } from "./paths.ts";
import { memberSettings } from "./last-good-settings.ts";
import { readStatus } from "./status.ts";

export type SharedOrigin = "cluster" | "mutable-config" | "modules";

/**
 * The config as a command on this machine should see it: the cluster KV when this machine is
 * a member and the KV answers, else the local mutable config (or the module files). Writes go
 * to the KV and are mirrored into the local cache at once. Keys in the KV no config can hold
 * (white space, `//`: see splitUsable) are skipped with a warning naming each, unless `quiet`
 * (`members` lists them as problems instead); `unusable` has them.
 */
export class SharedConfig {
  private constructor(
    private readonly local: LocalConfig,
    private readonly log: Logger,
    private readonly kv: Etcd3 | undefined,
    readonly memberUnreachable: boolean,
    readonly unusable: readonly UnusableKey[] = [],
  ) {}

  static async open(local: LocalConfig, node: NodePaths, log: Logger, opts: { quiet?: boolean } = {}): Promise<SharedConfig> {
    if (!existsSync(node.nodeCert) || !existsSync(node.nodeKey)) return new SharedConfig(local, log, undefined, false);
    const mapping = local.snapshot().mapping;
    // Never refuses: a bad value mirrored from the KV must not lock `config` out on a member
    // (it is how the value gets fixed). The agent's last good settings stand in for it.
    const settings = memberSettings(mapping, node);
    // This machine's endpoint first; if it cannot answer (a learner catching up, a proxy whose
    // upstream moved), any member over the mesh.
    const mesh = neighbourEndpoints(mapping, settings.clientPort);
    const here = [clientUrl("127.0.0.1", settings.clientPort)];
    // A learner's own etcd cannot serve requests yet: go to the others first.
    const learner = readStatus(node.status)?.role === "learner";
    const candidates = learner ? [...mesh.slice(0, 3).map((e) => [e]), here] : [here, ...mesh.slice(0, 3).map((e) => [e])];
    for (const endpoints of candidates) {
      const kv = openClient(endpoints, node, 1500);
      try {
        // This machine's own endpoint gets longer: right after the leader died, a read waits
        // for the election (1–2 s with etcd's defaults) and then answers — cutting it off at
        // 2 s, just before, cost a whole second attempt.
        const { mapping: m, unusable } = await readKvConfig(kv, endpoints === here ? 3000 : 2000);
        // Judged on the usable keys only: one bad key written by anyone must not make the
        // whole KV look empty (every command would fall back to the cache, writes be queued).
        if (mappingProblem(m) !== undefined) throw new Error("the cluster KV holds no config yet");
        if (!opts.quiet) for (const u of unusable) log.warn(describeUnusableKey(u));
        return new SharedConfig(local, log, kv, false, unusable);
      } catch (e) {
        kv.close();
        log.debug(`cluster KV at ${endpoints.join(",")} unreachable: ${errorMessage(e)}`);
      }
    }
    return new SharedConfig(local, log, undefined, true);
  }

  /** The KV client, when connected to the cluster. */
  get client(): Etcd3 | undefined {
    return this.kv;
  }

  get isCluster(): boolean {
    return this.kv !== undefined;
  }

  /**
   * The shared config now: read from the KV when connected (asked once more when a dropped
   * connection cuts the read: a new proxy member's local grpc-proxy restarts as it learns its
   * upstreams, between open()'s read and this one), else the local cache.
   * @throws what the KV read throws (ClusterUnavailable, etcd3 errors) when it fails again.
   */
  async snapshot(): Promise<{ mapping: FlatMapping; origin: SharedOrigin }> {
    const kv = this.kv;
    if (kv) return { mapping: (await readOnceMoreIfDropped(() => readKvConfig(kv, 3000))).mapping, origin: "cluster" };
    const s = this.local.snapshot();
    return { mapping: s.mapping, origin: s.origin };
  }

  /**
   * Read-modify-write of the shared config: in the KV (see updateKvMapping; `change` may drop
   * unusable keys there), else in the local cache, queued for the KV when this member could
   * not reach it. The local cache never holds unusable keys, so there the context is empty.
   */
  async update(change: KvChange): Promise<FlatMapping> {
    const offline = { unusable: [], drop: () => undefined };
    if (!this.kv) {
      if (!this.memberUnreachable) return this.local.update((m) => change(m, offline));
      let ops: PendingOp[] = [];
      const after = await this.local.update((m) => {
        const next = change({ ...m }, offline);
        ops = diffOps(m, next);
        return next;
      });
      new PendingChanges(this.local.paths.pendingConfig).append(ops);
      this.log.warn(
        "the cluster KV is unreachable from this member: the change is in the local cache and queued; the agent pushes it to the cluster when it is back.",
      );
      return after;
    }
    // Checked before the KV is written: a mapping the local cache would refuse (a section
    // deleted whole) must not reach the cluster either, where every member would then read
    // the KV as holding no config at all.
    const after = await updateKvMapping(
      this.kv,
      (m, ctx) => {
        const next = change(m, ctx);
        const problem = mappingProblem(next);
        if (problem) throw new UserError(`Refusing to change the shared config: after this change ${problem}. Nothing was written, in the cluster or here.`);
        return next;
      },
      5000,
    );
    await this.local.store.update(() => after, () => after);
    return after;
  }

  close(): void {
    this.kv?.close();
  }
}
