import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { LocalConfig } from "../config/local.ts";
import type { CachePaths } from "../config/paths.ts";
import { memberList } from "../consensus/client.ts";
import { peerUrl } from "../consensus/etcd-args.ts";
import { clusterSettings } from "../consensus/settings.ts";
import { neighbourPrefix } from "../mesh/neighbours.ts";
import { ETCD_SERVICE, PROXY_SERVICE } from "../node/agent.ts";
import { runningAgent } from "../node/agent-lock.ts";
import { YGGDRASIL_SERVICE } from "../node/mesh-service.ts";
import type { NodePaths } from "../node/paths.ts";
import { SharedConfig } from "../node/shared-config.ts";
import { readStatus } from "../node/status.ts";
import { Supervisor } from "../node/supervisor.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";

async function stopAgent(node: NodePaths): Promise<void> {
  const pid = runningAgent(node.agentPid);
  if (pid === undefined) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && runningAgent(node.agentPid) !== undefined; i++) await new Promise((r) => setTimeout(r, 50));
  if (runningAgent(node.agentPid) !== undefined) process.kill(pid, "SIGKILL");
}

/**
 * Leaves the cluster politely where it can (marks this node `left`, removes it from the etcd
 * member list so the voters' quorum math stays right), stops the agent and its services, and
 * removes raptiformica's state on this machine — keeping the node identity (its mesh address)
 * unless asked not to.
 */
export async function cleanNode(cache: CachePaths, node: NodePaths, local: LocalConfig, log: Logger, purgeIdentity: boolean): Promise<{ keptIdentity: boolean }> {
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
          const { peerPort } = clusterSettings((await shared.snapshot()).mapping);
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

  // Keep the identity aside while the rest of the cache dir goes.
  const identityDir = node.yggdrasilDir;
  const keep = !purgeIdentity && existsSync(join(identityDir, "private.key"));
  let stash: string | undefined;
  if (keep) {
    stash = mkdtempSync(join(cache.root, "..", ".raptiformica-identity-"));
    renameSync(join(identityDir, "private.key"), join(stash, "private.key"));
  }
  if (existsSync(cache.root)) for (const entry of readdirSync(cache.root)) rmSync(join(cache.root, entry), { recursive: true, force: true });
  if (keep && stash) {
    mkdirSync(identityDir, { recursive: true, mode: 0o700 });
    renameSync(join(stash, "private.key"), join(identityDir, "private.key"));
    rmSync(stash, { recursive: true, force: true });
  }
  return { keptIdentity: keep };
}
