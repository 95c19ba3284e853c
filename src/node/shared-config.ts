import { existsSync } from "node:fs";
import type { Etcd3 } from "etcd3";
import type { FlatMapping } from "../config/flatten.ts";
import type { LocalConfig } from "../config/local.ts";
import { mappingProblem } from "../config/store.ts";
import { PendingChanges, diffOps, type PendingOp } from "../config/pending.ts";
import { openClient } from "../consensus/client.ts";
import { readKvMapping, updateKvMapping } from "../consensus/kv-config.ts";
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
 * to the KV and are mirrored into the local cache at once.
 */
export class SharedConfig {
  private constructor(
    private readonly local: LocalConfig,
    private readonly log: Logger,
    private readonly kv: Etcd3 | undefined,
    readonly memberUnreachable: boolean,
  ) {}

  static async open(local: LocalConfig, node: NodePaths, log: Logger): Promise<SharedConfig> {
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
        const m = await readKvMapping(kv, endpoints === here ? 3000 : 2000);
        if (mappingProblem(m) !== undefined) throw new Error("the cluster KV holds no config yet");
        return new SharedConfig(local, log, kv, false);
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

  async snapshot(): Promise<{ mapping: FlatMapping; origin: SharedOrigin }> {
    if (this.kv) return { mapping: await readKvMapping(this.kv, 3000), origin: "cluster" };
    const s = this.local.snapshot();
    return { mapping: s.mapping, origin: s.origin };
  }

  async update(change: (m: FlatMapping) => FlatMapping): Promise<FlatMapping> {
    if (!this.kv) {
      if (!this.memberUnreachable) return this.local.update(change);
      let ops: PendingOp[] = [];
      const after = await this.local.update((m) => {
        const next = change({ ...m });
        ops = diffOps(m, next);
        return next;
      });
      new PendingChanges(this.local.paths.pendingConfig).append(ops);
      this.log.warn(
        "the cluster KV is unreachable from this member: the change is in the local cache and queued; the agent pushes it to the cluster when it is back.",
      );
      return after;
    }
    const after = await updateKvMapping(this.kv, change, 5000);
    await this.local.store.update(() => after, () => after);
    return after;
  }

  close(): void {
    this.kv?.close();
  }
}
