import { existsSync, readdirSync } from "node:fs";
import { HostsFile, hostsFilePath } from "../node/hosts-file.ts";
import { basename, dirname, join, relative } from "node:path";
import { allInstances } from "../compute/instance.ts";
import { removeOwnedState, requireOwnedCacheDir, type LeftInCache } from "../config/cache-owner.ts";
import type { LocalConfig } from "../config/local.ts";
import type { CachePaths } from "../config/paths.ts";
import { memberList } from "../consensus/client.ts";
import { peerUrl } from "../consensus/etcd-args.ts";
import { neighbourPrefix } from "../mesh/neighbours.ts";
import { ETCD_SERVICE, PROXY_SERVICE } from "../node/agent.ts";
import { runningAgent } from "../node/agent-lock.ts";
import { stopKeeper } from "../node/agent-keeper.ts";
import { YGGDRASIL_SERVICE } from "../node/mesh-service.ts";
import type { NodePaths } from "../node/paths.ts";
import { SharedConfig } from "../node/shared-config.ts";
import { memberSettings } from "../node/last-good-settings.ts";
import { readStatus } from "../node/status.ts";
import { Supervisor } from "../node/supervisor.ts";
import { errorMessage, UserError } from "../util/errors.ts";
import { waitUntil } from "../util/wait.ts";
import type { Logger } from "../util/log.ts";
import { isMember } from "./cluster/member.ts";

/** The keeper first (it stops the agent it started), so nothing starts the agent again; then any agent left. */
async function stopAgent(node: NodePaths): Promise<void> {
  await stopKeeper(node);
  const pid = runningAgent(node);
  if (pid === undefined) return;
  process.kill(pid, "SIGTERM");
  await waitUntil(() => runningAgent(node) === undefined, { timeoutMs: 5000, intervalMs: 50 });
  if (runningAgent(node) !== undefined) process.kill(pid, "SIGKILL");
}

/**
 * Refuses `clean` while instances started from this machine exist: their dirs under `var/`
 * hold what they run from (a netns instance has its /root, /usr/etc/raptiformica and
 * /run/instance bind-mounted from there), and once those are gone `destroy` cannot find them.
 */
function refuseWhileInstances(cache: CachePaths): void {
  const instances = allInstances(cache.machines);
  if (instances.length === 0) return;
  const shown = instances.slice(0, 3).map((i) => `${i.uuid} (${i.computeType}, ${i.serverType})`);
  const more = instances.length > shown.length ? ` and ${instances.length - shown.length} more` : "";
  throw new UserError(
    `Refusing to clean ${cache.root}: ${instances.length} instance(s) started from this machine still exist (${shown.join(", ")}${more}, in ${cache.machines}). ` +
      `clean would delete the files they run from and leave them orphaned where nothing can find them again. Tear them down first with ` +
      `\`raptiformica destroy\` (all of them) or \`raptiformica prune\` (the stale ones), then run clean again. Nothing was changed.`,
  );
}

/**
 * Leaves the cluster politely where it can (marks this node `left`, removes it from the etcd
 * member list so the voters' quorum math stays right), stops the agent and its services, and
 * removes raptiformica's state on this machine — keeping the identities unless `purgeIdentity`:
 * the node's mesh key (its address), `ssh/` (the SSH key members trust, if raptiformica made
 * one) and `known_hosts` (the host keys pinned for members). Only the entries raptiformica
 * creates are deleted (see removeOwnedState). Returns what was kept (relative to the cache
 * dir) and what was left alone.
 *
 * @throws UserError, changing nothing, when the cache dir is not raptiformica's
 *   (requireOwnedCacheDir) or while instances started from here exist.
 */
export async function cleanNode(cache: CachePaths, node: NodePaths, local: LocalConfig, log: Logger, purgeIdentity: boolean): Promise<{ kept: string[]; left: LeftInCache }> {
  // Both checks before anything changes: a refusal leaves the node running and the state intact.
  requireOwnedCacheDir(cache.root, "clean");
  refuseWhileInstances(cache);
  const status = readStatus(node.status);
  // The agent first: running, it would re-register this node over the `left` mark.
  await stopAgent(node);
  // The member names the agent kept in /etc/hosts go with it.
  if (status?.publicKey) new HostsFile(hostsFilePath(), log).remove();
  if (status?.publicKey && isMember({ node })) {
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

  // The identities: this node's mesh key, and the operator's SSH key (that members trust) with
  // the host keys pinned for them. Losing those locks the operator out of the cluster.
  const identities = [join(node.yggdrasilDir, "private.key"), cache.ssh, cache.knownHosts, ...siblings(cache.knownHosts)];
  const kept = purgeIdentity ? [] : identities.filter((p) => existsSync(p));
  const left = removeOwnedState(cache.root, { keep: kept });
  return { kept: kept.map((p) => relative(cache.root, p)), left };
}

/** `known_hosts.old` (ssh-keygen -R) and the like, beside `path`. */
function siblings(path: string): string[] {
  try {
    return readdirSync(dirname(path))
      .filter((n) => n.startsWith(`${basename(path)}.`) && n !== `${basename(path)}.lock`)
      .map((n) => join(dirname(path), n));
  } catch {
    return [];
  }
}
