/**
 * Registers many neighbours in one go on the member it runs on (the lab runs it in that
 * member's namespace with its cache dir): what `inject HOST --key KEY` does (the same
 * `withRegisteredNeighbour`; the hosts are lab IPv4 addresses, already in parseHost form), one KV update for
 * all of them instead of one CLI process each. Benchmarks that bring up dozens of nodes on this
 * 2-core machine use it so that the operator's part (one `inject` per node, ~2 s of CPU each
 * under load) does not dominate what they measure: the cluster forming.
 *
 *   node --import tsx bench/lib/seed-neighbours.ts < [{"host": "...", "publicKey": "..."}, ...]
 */
import { readFileSync } from "node:fs";
import { cachePaths, findInstallDir, resolveCacheDir } from "../../src/config/paths.ts";
import { LocalConfig } from "../../src/config/local.ts";
import { clusterSettings } from "../../src/consensus/settings.ts";
import { withRegisteredNeighbour } from "../../src/mesh/neighbours.ts";
import { runningAgent } from "../../src/node/agent-lock.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { SharedConfig } from "../../src/node/shared-config.ts";
import { createLogger } from "../../src/util/log.ts";

const wanted = JSON.parse(readFileSync(0, "utf8")) as { host: string; publicKey: string }[];
const paths = cachePaths(resolveCacheDir(undefined));
const log = createLogger(false);
const local = new LocalConfig(paths, findInstallDir(), log, false);
const node = nodePaths(paths.node);
const shared = await SharedConfig.open(local, node, log);
try {
  if (!shared.isCluster) throw new Error("not connected to the cluster KV: run this on a member");
  await shared.update((m) => {
    let next = m;
    const port = clusterSettings(m).yggdrasilPort;
    for (const w of wanted) next = withRegisteredNeighbour(next, { publicKey: w.publicKey, host: w.host, sshPort: 22, yggdrasilPort: port });
    return next;
  });
} finally {
  shared.close();
}
const pid = runningAgent(node);
if (pid !== undefined) process.kill(pid, "SIGUSR1");
console.log(`registered ${wanted.length} neighbour(s)`);
