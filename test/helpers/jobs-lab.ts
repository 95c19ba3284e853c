/**
 * The lab the jobs e2e files (jobs.test.ts, jobs-faults.test.ts) run on: a formed 3-member
 * cluster in network namespaces, a temp dir that commands write into (the namespaces share
 * this machine's file system, so the test sees what any member wrote), and etcdctl on a member.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, type ExecResult } from "../lab/index.ts";
import { LabCluster } from "./cluster.ts";

/** Why the jobs lab cannot run here (not root, or a program missing), or undefined. */
export function jobsLabMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "yggdrasil", "etcd", "etcdctl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}

export interface JobsLab {
  readonly lab: Lab;
  readonly c: LabCluster;
  /** A fresh temp dir for the commands' files; removed by closeJobsLab. */
  readonly dir: string;
}

/**
 * Creates a 3-node lab, forms the cluster (`LabCluster.form`, joins one by one, 60 s for all
 * alive) and makes a temp dir named `tmpPrefix` + random. With `voters`, also waits (up to
 * 60 s) until that many alive voters are seen from n0 — for tests whose faults must leave a
 * quorum. Throws what `form` throws, after destroying the lab and removing the dir.
 */
export async function jobsLab(o: { tmpPrefix: string; voters?: number }): Promise<JobsLab> {
  const dir = mkdtempSync(join(tmpdir(), o.tmpPrefix));
  let lab: Lab | undefined;
  try {
    lab = await Lab.create({ nodes: 3, topology: "full" });
    const c = await new LabCluster(lab).form(3, o.voters !== undefined ? { voters: o.voters, votersTimeoutMs: 60_000 } : {});
    return { lab, c, dir };
  } catch (e) {
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Destroys the lab and removes its temp dir; nothing to do for undefined (setup failed). */
export async function closeJobsLab(j: JobsLab | undefined): Promise<void> {
  if (!j) return;
  await j.lab.destroy();
  rmSync(j.dir, { recursive: true, force: true });
}

/**
 * `etcdctl ARGS` in member i's namespace against its own etcd (https://127.0.0.1:2379, with its
 * client certificate from node/etcd/tls, a 3 s dial timeout), API v3. Returns the outcome; does
 * not throw on a non-zero exit.
 */
export function etcdctlOn(lab: Lab, i: number, args: readonly string[]): Promise<ExecResult> {
  const tls = join(lab.nodes[i]!.cacheDir, "node", "etcd", "tls");
  return lab.exec(i, ["etcdctl", "--endpoints", "https://127.0.0.1:2379", "--cacert", join(tls, "ca.crt"), "--cert", join(tls, "node.crt"), "--key", join(tls, "node.key"), "--dial-timeout", "3s", ...args], {
    env: { ETCDCTL_API: "3" },
  });
}
