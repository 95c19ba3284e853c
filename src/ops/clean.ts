import { existsSync, lstatSync, readdirSync, rmdirSync, rmSync } from "node:fs";
import { join, sep } from "node:path";
import type { LocalConfig } from "../config/local.ts";
import { isOwnedEntry, type CachePaths } from "../config/paths.ts";
import { memberList } from "../consensus/client.ts";
import { peerUrl } from "../consensus/etcd-args.ts";
import { neighbourPrefix } from "../mesh/neighbours.ts";
import { ETCD_SERVICE, PROXY_SERVICE } from "../node/agent.ts";
import { runningAgent } from "../node/agent-lock.ts";
import { YGGDRASIL_SERVICE } from "../node/mesh-service.ts";
import type { NodePaths } from "../node/paths.ts";
import { SharedConfig } from "../node/shared-config.ts";
import { memberSettings } from "../node/last-good-settings.ts";
import { readStatus } from "../node/status.ts";
import { Supervisor } from "../node/supervisor.ts";
import { errorMessage } from "../util/errors.ts";
import { waitUntil } from "../util/wait.ts";
import type { Logger } from "../util/log.ts";

async function stopAgent(node: NodePaths): Promise<void> {
  const pid = runningAgent(node.agentPid);
  if (pid === undefined) return;
  process.kill(pid, "SIGTERM");
  await waitUntil(() => runningAgent(node.agentPid) === undefined, { timeoutMs: 5000, intervalMs: 50 });
  if (runningAgent(node.agentPid) !== undefined) process.kill(pid, "SIGKILL");
}

/**
 * Deletes `path` except the paths in `keep` (absolute, below it): a folder that holds one of
 * them is emptied around it instead. Returns whether anything was kept.
 */
function removeExcept(path: string, keep: readonly string[]): boolean {
  if (keep.includes(path)) return true;
  const inside = keep.some((k) => k.startsWith(`${path}${sep}`));
  if (!inside || !lstatSync(path).isDirectory()) {
    rmSync(path, { recursive: true, force: true });
    return false;
  }
  let kept = false;
  for (const entry of readdirSync(path)) kept = removeExcept(join(path, entry), keep) || kept;
  if (!kept) rmdirSync(path);
  return kept;
}

/**
 * Removes raptiformica's own entries from the cache dir (OWNED_ENTRIES), except `keep`, and
 * the dir itself only if nothing else is left in it: whatever else someone put there stays.
 * Returns the names of the entries left alone.
 */
export function removeOwnedState(root: string, keep: readonly string[] = []): string[] {
  if (!existsSync(root)) return [];
  const foreign: string[] = [];
  for (const entry of readdirSync(root)) {
    if (isOwnedEntry(entry)) removeExcept(join(root, entry), keep);
    else foreign.push(entry);
  }
  if (foreign.length === 0 && keep.length === 0) {
    try {
      rmdirSync(root);
    } catch {
      /* something appeared meanwhile: leave the dir */
    }
  }
  return foreign;
}

/**
 * Leaves the cluster politely where it can (marks this node `left`, removes it from the etcd
 * member list so the voters' quorum math stays right), stops the agent and its services, and
 * removes raptiformica's state on this machine — keeping the node identity (its mesh address)
 * unless asked not to. Only the entries raptiformica creates are deleted (see removeOwnedState).
 */
export async function cleanNode(cache: CachePaths, node: NodePaths, local: LocalConfig, log: Logger, purgeIdentity: boolean): Promise<{ keptIdentity: boolean; leftAlone: string[] }> {
  const status = readStatus(node.status);
  // The agent first: running, it would re-register this node over the `left` mark.
  await stopAgent(node);
  if (status?.publicKey && existsSync(node.nodeCert)) {
    const shared = await SharedConfig.open(local, node, log);
    try {
      if (shared.isCluster) {
        const key = status.publicKey;
        await shared.update((m) => (m[`${neighbourPrefix(key)}mesh_address`] ? { ...m, [`${neighbourPrefix(key)}left`]: "true" } : m));
        const kvClient = shared.client;
        if (kvClient && status.meshAddress) {
          const { peerPort } = memberSettings((await shared.snapshot()).mapping, node);
          const members = await memberList(kvClient, 3000);
          const me = members.find((m) => m.peerURLs.includes(peerUrl(status.meshAddress as string, peerPort)));
          const voters = members.filter((m) => !m.isLearner);
          if (me && (me.isLearner || voters.length > 1)) await kvClient.cluster.memberRemove({ ID: me.id } as never);
        }
      }
    } catch (e) {
      log.warn(`could not leave the cluster cleanly (${errorMessage(e)}); the others will see this node as failed.`);
    } finally {
      shared.close();
    }
  }
  const sup = new Supervisor(node.runDir, node.logDir);
  for (const s of [ETCD_SERVICE, PROXY_SERVICE, YGGDRASIL_SERVICE]) await sup.stop(s);

  const identityKey = join(node.yggdrasilDir, "private.key");
  const keep = !purgeIdentity && existsSync(identityKey);
  const leftAlone = removeOwnedState(cache.root, keep ? [identityKey] : []);
  return { keptIdentity: keep, leftAlone };
}
