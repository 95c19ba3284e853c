import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import { otherClusterProblem } from "../consensus/cluster-id.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import { parseReportedMapping } from "./learn.ts";
import { MemberCli } from "./cluster/member-cli.ts";
import type { NodeChannel } from "./cluster/node-channel.ts";
import type { IdentityAnswer } from "./cluster/wire.ts";

/** How the cluster reaches a node: the host and SSH port recorded in its neighbour entry. */
export interface Reach {
  readonly host: string;
  readonly port: number;
}

/**
 * Registers the node with this public key, reached at `reach`, in the cluster (so every member
 * accepts it and those that can reach it dial it). Resolves with the cluster's config to hand
 * the node (the new neighbour in it, and the CA it needs to join), or undefined when there is
 * none to hand (a lab's first node starts the cluster from an empty cache).
 */
export type Registrar = (publicKey: string, reach: Reach) => Promise<FlatMapping | undefined>;

/** The steps of assimilation a progress display shows; `detail` is human text. */
export type AssimilateProgress = (step: "register" | "mesh", detail?: string) => void;

export interface Enlistment {
  /** The node being made a member. */
  readonly node: NodeChannel;
  readonly reach: Reach;
  readonly register: Registrar;
  /**
   * The node keeps a config file it already has (a member being slaved again: its
   * cluster-synced copy wins over the operator's); otherwise the registrar's config replaces it.
   */
  readonly keepOwnConfig: boolean;
  readonly progress?: AssimilateProgress;
}

export interface MeshOptions {
  /** Fire the node's `after_mesh` hooks (`mesh` without `--no-after-mesh`). */
  readonly afterMesh: boolean;
  /** Set by `spawn`: the instance id, kept in the node's neighbour entry so `prune` can find it. */
  readonly uuid?: string;
}

/**
 * Everything of assimilation before `mesh`: the node records how it is reached (`advertise`),
 * its key is read (`identity --json`, made there once), `register` puts it into the cluster,
 * and the cluster's config is written to its `mutable_config.json` (unless `keepOwnConfig` and
 * it has one). Resolves with the node's identity. Throws a UserError naming the node when a
 * command fails there or its answer does not decode, and whatever `register` throws.
 */
export async function enlist(e: Enlistment): Promise<IdentityAnswer> {
  const node = new MemberCli(e.node);
  e.progress?.("register");
  await node.ok(["advertise", e.reach.host, "--port", String(e.reach.port)]);
  const id = await node.identity();
  const cluster = await e.register(id.publicKey, e.reach);
  if (cluster) await e.node.writeCacheFile("mutable_config.json", `${JSON.stringify(cluster, null, 2)}\n`, { onlyIfAbsent: e.keepOwnConfig });
  return id;
}

/**
 * The node starts its agent and joins (`mesh`, bounded by 300 s), then records its instance id
 * in its own neighbour entry when it has one. Throws a UserError naming the node when either
 * command fails there.
 */
export async function meshIn(channel: NodeChannel, publicKey: string, o: MeshOptions): Promise<void> {
  const node = new MemberCli(channel);
  await node.ok(["mesh", ...(o.afterMesh ? [] : ["--no-after-mesh"])], 300_000);
  if (o.uuid) await node.ok(["config", "set", `${KEY_ROOT}/meshnet/neighbours/${publicKey}/uuid`, o.uuid]);
}

/**
 * Makes the node a member: {@link enlist}, then {@link meshIn}. The one sequence `slave` runs
 * over SSH and the lab runs in network namespaces. A node behind NAT needs no inbound path: it
 * dials out to the members it learns from the config it is handed. Resolves with its identity
 * (the mesh address is the one derived from its key); throws what those two throw.
 */
export async function assimilate(e: Enlistment & MeshOptions): Promise<IdentityAnswer> {
  const id = await enlist(e);
  e.progress?.("mesh", id.meshAddress);
  await meshIn(e.node, id.publicKey, e);
  return id;
}

/**
 * A {@link Registrar} through members: the first of `members` that answers runs
 * `inject HOST --port PORT --key KEY`, and its view of the config (`config show --json`) is
 * what the node gets. `ours` is the operator's own config: a member of another cluster is
 * refused, and when the member cannot show its config after registering, `ours` is handed
 * instead (without `ours` that member counts as failed). `newcomer` names the node in the
 * error. Throws a UserError listing every member tried when none could register it.
 */
export function registerThroughMembers(members: readonly NodeChannel[], newcomer: string, ours?: FlatMapping): Registrar {
  return async (key, reach) => {
    const tried: string[] = [];
    for (const channel of members) {
      const member = new MemberCli(channel);
      try {
        await member.ok(["inject", reach.host, "--port", String(reach.port), "--key", key]);
        const shown = await member.run(["config", "show", "--json"]);
        if (shown.exitCode !== 0 && ours) return ours;
        if (shown.exitCode !== 0) throw new UserError(`${member.who} registered ${newcomer} but cannot show its config (exit ${shown.exitCode}).`);
        const theirs = parseReportedMapping(shown.stdout, member.who);
        const problem = ours && otherClusterProblem(ours, theirs, member.who);
        if (problem) throw new UserError(problem);
        return theirs;
      } catch (e) {
        tried.push(errorMessage(e));
      }
    }
    throw new UserError(
      `No member of the cluster could register ${newcomer} (tried ${members.length}):\n  ${tried.join("\n  ")}\n` +
        "The new machine was provisioned; run slave again once a member is reachable over SSH from here.",
    );
  };
}
