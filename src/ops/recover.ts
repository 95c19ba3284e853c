import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Context } from "./context.ts";
import { deadline, memberList, openClient } from "../consensus/client.ts";
import { clientUrlOfPeer } from "../consensus/etcd-args.ts";
import { readKvMapping } from "../consensus/kv-config.ts";
import { pokeAgent, runningAgent } from "../node/agent-lock.ts";
import { memberSettings } from "../node/last-good-settings.ts";
import { ownEtcdEndpoint } from "../node/step-consensus.ts";
import { UserError, errorMessage } from "../util/errors.ts";
import { waitUntil } from "../util/wait.ts";
import { ensureAgent } from "./node.ts";
import { makePrivateDir } from "../util/private-dir.ts";

interface Progress {
  readonly raftIndex: number;
  readonly endpoint: string;
}

async function raftIndexAt(endpoint: string, ctx: Context): Promise<Progress | undefined> {
  const client = openClient([endpoint], ctx.node, 1500);
  try {
    const st = await deadline("etcd status", 2000, client.maintenance.status());
    return { raftIndex: Number(st.raftIndex), endpoint };
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/**
 * `recover`: when quorum is lost for good (e.g. 2 of 3 voters destroyed), restart the cluster
 * from this survivor with etcd's --force-new-cluster — keeping its data, making it the only
 * voter — after checking that quorum really is gone and that no reachable voter has newer
 * data (unless `force`). The others rejoin as they come back (a voter removed this way moves
 * its old data aside and joins fresh), and the voter manager grows the set back.
 *
 * @throws UserError when this machine holds no etcd data, when the cluster still has quorum,
 * when this member's etcd does not answer, or when a reachable voter has newer data (without
 * `force`); nothing is changed then.
 */
export async function recover(ctx: Context, opts: { force?: boolean; timeoutMs?: number }): Promise<{ raftIndex: number }> {
  if (!existsSync(join(ctx.node.etcdData, "member"))) {
    throw new UserError(
      `recover must run on a surviving voter: this machine has no etcd data (${ctx.node.etcdData}). Run it on the member that was a voter, with the newest data (see \`raptiformica members\` on the survivors).`,
    );
  }
  const { mapping } = ctx.config.snapshot();
  const { clientPort } = memberSettings(mapping, ctx.node);
  // This member's etcd itself, not the grpc-proxy that serves the local endpoint of a member
  // that joined as a learner and has not taken it over yet.
  const here = ownEtcdEndpoint(ctx.node, clientPort);
  if (runningAgent(ctx.node) === undefined) await ensureAgent(ctx.paths);

  const local = openClient([here], ctx.node, 1500);
  // Any failure of the read (timeout, no leader) is what recover is for.
  const hasQuorum = await readKvMapping(local, 4000).then(
    () => true,
    () => false,
  );
  if (hasQuorum) throw new UserError("The cluster has quorum: it answers reads and writes. recover is only for a cluster that lost quorum for good; nothing was changed.");
  let voters: string[] = [];
  try {
    voters = (await memberList(local, 2000)).filter((m) => !m.isLearner).flatMap((m) => m.peerURLs.map((u) => clientUrlOfPeer(u, clientPort)));
  } catch (e) {
    throw new UserError(`This member's etcd does not answer at all (${errorMessage(e)}); recover needs it running. Check \`${ctx.node.logDir}/etcd.log\`.`);
  } finally {
    local.close();
  }
  const mine = await raftIndexAt(here, ctx);
  if (!mine) throw new UserError(`This member's etcd does not report its status; recover needs it running. Check ${ctx.node.logDir}/etcd.log.`);
  const others = (await Promise.all(voters.map((v) => raftIndexAt(v, ctx)))).filter((p): p is Progress => p !== undefined && p.endpoint !== here);
  const newer = others.filter((o) => o.raftIndex > mine.raftIndex).sort((a, b) => b.raftIndex - a.raftIndex)[0];
  if (newer && !opts.force) {
    throw new UserError(
      `The voter at ${newer.endpoint} has newer data (raft index ${newer.raftIndex}, here ${mine.raftIndex}): run recover there instead, so no committed write is lost (or add --force to recover from here anyway).`,
    );
  }

  makePrivateDir(ctx.node.runDir);
  writeFileSync(ctx.node.forceNewCluster, `${new Date().toISOString()}\n`, { mode: 0o600 });
  pokeAgent(ctx.node);
  let last = "";
  // The agent removes the marker once it restarted etcd; then etcd must answer a read.
  const back = await waitUntil(
    async () => {
      if (existsSync(ctx.node.forceNewCluster)) return false;
      const c = openClient([here], ctx.node, 1500);
      try {
        await readKvMapping(c, 3000);
        return true;
      } catch (e) {
        last = errorMessage(e);
        return false;
      } finally {
        c.close();
      }
    },
    { timeoutMs: opts.timeoutMs ?? 90_000, intervalMs: 1000 },
  );
  if (back) return { raftIndex: mine.raftIndex };
  throw new UserError(`etcd did not come back as a one-voter cluster in time (${last || "the agent has not restarted it yet"}). See ${ctx.node.logDir}/agent.log and etcd.log.`);
}
