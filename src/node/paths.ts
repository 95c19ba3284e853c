import { join } from "node:path";

/** Where a member keeps its state, all below `<cache>/node` so several lab nodes can share a host. */
export interface NodePaths {
  readonly root: string;
  readonly yggdrasilDir: string;
  readonly yggdrasilConfig: string;
  readonly yggdrasilSocket: string;
  readonly etcdDir: string;
  readonly etcdData: string;
  readonly tlsDir: string;
  readonly caCert: string;
  readonly nodeCert: string;
  readonly nodeKey: string;
  readonly logDir: string;
  readonly runDir: string;
  readonly agentPid: string;
  readonly agentLock: string;
  readonly status: string;
  /** Written by `recover`: the agent restarts etcd once with --force-new-cluster, then removes it. */
  readonly forceNewCluster: string;
  /** The cluster settings the agent last ran with, for when the shared config holds a bad value. */
  readonly lastGoodSettings: string;
}

export function nodePaths(root: string): NodePaths {
  const etcdDir = join(root, "etcd");
  const tlsDir = join(etcdDir, "tls");
  const runDir = join(root, "run");
  return {
    root,
    yggdrasilDir: join(root, "yggdrasil"),
    yggdrasilConfig: join(root, "yggdrasil", "yggdrasil.conf"),
    // Unix socket paths are limited to ~107 bytes; the run dir is kept short for that reason.
    yggdrasilSocket: join(runDir, "ygg.sock"),
    etcdDir,
    etcdData: join(etcdDir, "data"),
    tlsDir,
    caCert: join(tlsDir, "ca.crt"),
    nodeCert: join(tlsDir, "node.crt"),
    nodeKey: join(tlsDir, "node.key"),
    logDir: join(root, "log"),
    runDir,
    agentPid: join(runDir, "agent.pid"),
    agentLock: join(runDir, "agent.lock"),
    status: join(runDir, "status.json"),
    forceNewCluster: join(runDir, "force-new-cluster"),
    lastGoodSettings: join(root, "settings.json"),
  };
}
