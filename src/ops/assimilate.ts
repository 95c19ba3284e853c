import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import type { ClusterId } from "../consensus/cluster-id.ts";
import { ClusterUnavailable, EXIT_CLUSTER_UNAVAILABLE, UserError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { Cluster } from "./cluster/cluster.ts";
import { lastLines, MemberCli } from "./cluster/member-cli.ts";
import { ViaMember } from "./cluster/via-member.ts";
import { NoMemberAnswered } from "./via-member.ts";
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

/** How often, and how far apart, the instance id is written again while the new member's KV does not answer. */
export const UUID_WRITE_TRIES = 4;
export const UUID_WRITE_PAUSE_MS = 2000;

/**
 * The node starts its agent and joins (`mesh`, bounded by 300 s), then records its instance id
 * in its own neighbour entry when it has one. That write is the new member's first through its
 * own KV endpoint, seconds after it joined: while that endpoint does not answer (exit
 * EXIT_CLUSTER_UNAVAILABLE: its grpc-proxy restarting as it learns its upstreams, a learner
 * not promoted yet) it is made again, {@link UUID_WRITE_TRIES} times in all, `pauseMs` apart
 * (CI saw one spawn fail on this write, 12 s into the member's first join).
 * Throws a UserError naming the node when `mesh` fails there, or the write fails otherwise or
 * every time.
 */
export async function meshIn(channel: NodeChannel, publicKey: string, o: MeshOptions, pauseMs = UUID_WRITE_PAUSE_MS): Promise<void> {
  const node = new MemberCli(channel);
  await node.ok(["mesh", ...(o.afterMesh ? [] : ["--no-after-mesh"])], 300_000);
  if (!o.uuid) return;
  const argv = ["config", "set", `${KEY_ROOT}/meshnet/neighbours/${publicKey}/uuid`, o.uuid];
  for (let attempt = 1; ; attempt++) {
    const out = await node.run(argv, 120_000);
    if (out.exitCode === 0) return;
    if (out.exitCode !== EXIT_CLUSTER_UNAVAILABLE || attempt >= UUID_WRITE_TRIES) {
      const tries = attempt > 1 ? ` (${attempt} tries, ${pauseMs / 1000} s apart)` : "";
      throw new UserError(`\`raptiformica ${argv.join(" ")}\` failed on ${node.who}${tries} (exit ${out.exitCode}): ${lastLines(out.stderr)}`);
    }
    await new Promise((r) => setTimeout(r, pauseMs));
  }
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
 * A {@link Registrar} through one {@link Cluster} (LocalCluster on a member: its own KV):
 * `cluster.inject` registers the node and the config read back afterwards is what the node
 * gets, `fallback` when it could not be read back. `newcomer` names the node in errors.
 * @throws whatever `cluster.inject` throws (UserError, ClusterUnavailable), as it is.
 * @throws UserError when the node was registered but there is no config to hand it (no `fallback`).
 */
export function registerThrough(cluster: Cluster, newcomer: string, fallback?: FlatMapping): Registrar {
  return async (publicKey, reach) => {
    const config = (await cluster.inject({ host: reach.host, sshPort: reach.port, publicKey })).config ?? fallback;
    if (!config) throw new UserError(`${newcomer} was registered, but the cluster's config could not be read back to hand it.`);
    return config;
  };
}

/** Whom {@link registerViaMembers} reports to and checks against. */
export interface ViaMembersOptions {
  /** The node being registered, as errors name it. */
  readonly newcomer: string;
  /** The cluster this machine manages: nothing is written to a member of another (same-cluster.ts). */
  readonly mine?: ClusterId;
  /** Handed to the node when the member cannot show its config after registering. */
  readonly fallback?: FlatMapping;
  /** Where a member's warnings go. */
  readonly log: Logger;
}

/**
 * A {@link Registrar} from an operator machine: each of `members` in turn (SSH for `slave`,
 * `ip netns exec` in the lab) is asked through a {@link ViaMember} of its own (Cluster.inject,
 * which first checks the member is in cluster `mine`) until one registers the node and its config
 * can be handed (`fallback` when it cannot show it). A member that does not answer, answers with
 * an error, or is in another cluster (nothing is sent to it) is passed over for the next, as
 * `slave` always did: one member without quorum or in trouble must not stop the registration.
 * @throws UserError when none could: it lists each member and why, and says the node is
 *   provisioned and what to do. An error that is no UserError (a fault here) is thrown as it is.
 */
export function registerViaMembers(members: readonly NodeChannel[], o: ViaMembersOptions): Registrar {
  return async (publicKey, reach) => {
    const tried: string[] = [];
    let other = false;
    for (const member of members) {
      const via = new ViaMember({ members: async () => [member], mine: () => o.mine, log: o.log });
      try {
        return await registerThrough(via, o.newcomer, o.fallback)(publicKey, reach);
      } catch (e) {
        if (e instanceof NoMemberAnswered) {
          tried.push(...e.tried);
          other ||= e.other !== undefined;
        } else if (e instanceof UserError || e instanceof ClusterUnavailable) {
          // A member whose etcd did not answer is passed over like one that refused.
          tried.push(`${member.who}: ${e.message}`);
        } else {
          throw e;
        }
      }
    }
    const which = members.length === 1 ? "the one member it was given" : `each of the ${members.length} members, in turn`;
    throw new UserError(
      `No member of the cluster could register ${o.newcomer} (tried ${which}):\n  ${tried.join("\n  ")}\n` +
        (other ? "Nothing was sent to a member of another cluster. " : "") +
        "The new machine was provisioned; run slave again once a member is reachable over SSH from here.",
    );
  };
}
