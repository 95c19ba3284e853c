import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../lab/index.ts";
import type { LabCluster } from "./cluster.ts";
import { startSshd } from "./sshd.ts";

export interface PhoneResult {
  /** The longest time between two lines of the session from the move on (ms): what the user sees frozen. */
  readonly freezeMs: number;
  /** Lines the session delivered after the move (0: it never resumed). */
  readonly linesAfter: number;
  /** Whether the SSH client was still running at the end (the session survived). */
  readonly alive: boolean;
}

/** The interval at which the remote end of the session prints a line. */
const LINE_EVERY_S = 0.1;

/**
 * The original project's phone story, on the lab: lab node `from` opens an SSH session to lab
 * node `to`'s mesh address (a real sshd in `to`'s namespace, a key and pinned host key made
 * here), whose remote command prints a line every 100 ms; then `to` moves to `newAddress` (its
 * old address removed, as a phone changing networks; nothing advertised, nobody told) and the
 * session is watched until it has delivered `settleLines` lines after the move, or `maxWaitMs`
 * passed. Returns how long the session froze. The SSH client is stopped at the end; `to` keeps
 * its new address. Shared by test/e2e/phone.test.ts and bench/phone-freeze.ts.
 * @throws Error when the session cannot be opened (no line within 30 s).
 */
export async function phoneStory(c: LabCluster, opts: { from: number; to: number; newAddress: string; prefix: number; device: string; maxWaitMs?: number; settleLines?: number }): Promise<PhoneResult> {
  const lab = c.lab;
  const dir = mkdtempSync(join(tmpdir(), "rf-phone-"));
  const key = join(dir, "id_ed25519");
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  const { hostKey } = await startSshd(lab, opts.to, readFileSync(`${key}.pub`, "utf8"));
  const target = (await c.identity(opts.to)).meshAddress;
  writeFileSync(join(dir, "known_hosts"), `${target} ${readFileSync(`${hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
  const argv = [
    "netns", "exec", lab.nodes[opts.from]!.ns,
    "ssh", "-F", "/dev/null", "-i", key, "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
    `root@${target}`, `while :; do echo x; sleep ${LINE_EVERY_S}; done`,
  ];
  const ssh = spawn("ip", argv, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env["PATH"], HOME: dir } });
  const times: number[] = [];
  let stderr = "";
  ssh.stdout.setEncoding("utf8");
  ssh.stdout.on("data", (chunk: string) => {
    const now = performance.now();
    for (let k = chunk.split("\n").length - 1; k > 0; k--) times.push(now);
  });
  ssh.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  ssh.on("exit", () => (exited = true));
  try {
    try {
      await waitFor("the SSH session over the mesh to deliver 20 lines", () => times.length >= 20, { timeoutMs: 30_000, intervalMs: 100 });
    } catch (e) {
      throw new Error(`${(e as Error).message}; ssh said: ${stderr.trim() || "(nothing)"}`);
    }
    const old = lab.addressOf(opts.to);
    const tMove = performance.now();
    // A new address first would make it a secondary of the old one's subnet and go with it.
    for (const args of [["addr", "del", `${old}/${opts.prefix}`, "dev", opts.device], ["addr", "add", `${opts.newAddress}/${opts.prefix}`, "dev", opts.device]]) {
      const r = await lab.exec(opts.to, ["ip", ...args]);
      if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")} in ${lab.nodes[opts.to]!.name}: ${r.stderr}`);
    }
    const settle = opts.settleLines ?? 30;
    const after = () => times.filter((t) => t > tMove);
    await waitFor(
      `${settle} lines after the move`,
      () => after().length >= settle || exited,
      { timeoutMs: opts.maxWaitMs ?? 60_000, intervalMs: 100 },
    ).catch(() => undefined);
    const seen = [tMove, ...after()];
    let freeze = 0;
    for (let k = 1; k < seen.length; k++) freeze = Math.max(freeze, (seen[k] as number) - (seen[k - 1] as number));
    if (after().length === 0) freeze = performance.now() - tMove;
    return { freezeMs: Math.round(freeze), linesAfter: after().length, alive: !exited };
  } finally {
    ssh.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Restarts yggdrasil on lab nodes `nodes` (the agent's supervisor starts it again at once) and
 * waits until all `total` members are alive again. A yggdrasil started before a member joined
 * does not let that member dial in (AllowedPublicKeys is read at start; 0.5 cannot change it
 * live): after the restart every node's list holds every member, as on a member that restarted
 * since the last join. The pid comes from the socket listening on the mesh port in the node's
 * own namespace, so nothing outside the lab is touched. Returns once the restarted nodes reach
 * every member over the mesh.
 * @throws Error when a node has no yggdrasil listening, the members are not alive within 60 s, or
 * a restarted node does not reach a member within 30 s.
 */
export async function restartYggdrasil(c: LabCluster, nodes: readonly number[], total: number, port = 4863): Promise<void> {
  for (const i of nodes) {
    const r = await c.lab.exec(i, ["sh", "-c", `p=$(ss -tlnpH 'sport = :${port}' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2); [ -n "$p" ] && kill "$p"`]);
    if (r.exitCode !== 0) throw new Error(`no yggdrasil listening on :${port} in ${c.lab.nodes[i]!.name}: ${r.stderr}`);
  }
  await c.waitAlive(0, total, 60_000);
  // Alive in the KV is not yet reachable over the mesh: the restarted nodes' tun comes back a
  // moment later, and a connection tried then fails at once ("Network is unreachable").
  const addresses = await Promise.all(Array.from({ length: total }, async (_, k) => (await c.identity(k)).meshAddress));
  for (const i of nodes) {
    for (const [k, address] of addresses.entries()) {
      if (k === i) continue;
      await waitFor(`${c.lab.nodes[i]!.name} to reach n${k} over the mesh`, async () => (await c.lab.exec(i, ["ping", "-6", "-c1", "-W1", address])).exitCode === 0, { timeoutMs: 30_000, intervalMs: 300 });
    }
  }
}
