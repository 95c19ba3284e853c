/**
 * The original project's phone story: a machine switches networks and an open SSH session to
 * it (over the mesh) resumes after a short freeze. In the lab: a 3-node cluster, an SSH session
 * from n0 to n2's mesh address printing a line every 100 ms, then n2's address replaced by
 * another (nothing advertised, nobody told: the mesh finds it again by itself). The session
 * must resume, and keep its mesh address; how long it froze is printed here and measured by
 * bench/phone-freeze.ts (goal ≤ 5 s). About 40 s.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Lab } from "../lab/index.ts";
import { LabCluster } from "../helpers/cluster.ts";
import { YggdrasilAdmin } from "../../src/mesh/yggdrasil/admin.ts";
import { phoneStory } from "../helpers/phone.ts";
import { yggdrasil05 } from "../helpers/netns-pair.ts";

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "yggdrasil", "etcd", "/usr/sbin/sshd", "ssh"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}
const skip = missing();

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.destroy();
});

describe("the phone story: a member changes networks under an open SSH session", { skip, timeout: 240_000 }, () => {
  it("the session over the mesh resumes, and the member keeps its mesh address", async () => {
    const lab = await Lab.create({ nodes: 3, topology: "full" });
    labs.push(lab);
    const c = await new LabCluster(lab).form(3);
    const before = await c.identity(2);
    const r = await phoneStory(c, { from: 0, to: 2, newAddress: "198.18.0.201", prefix: 16, device: "seg0", maxWaitMs: 90_000 });
    process.stderr.write(`# phone story, just formed: the SSH session froze for ${(r.freezeMs / 1000).toFixed(1)} s, then delivered ${r.linesAfter} lines\n`);
    assert.ok(r.alive, "the SSH client is still connected");
    assert.ok(r.linesAfter >= 30, `the session resumed after the move (${r.linesAfter} lines, froze ${r.freezeMs} ms)`);
    assert.equal((await c.identity(2)).meshAddress, before.meshAddress);
  });

  // On Yggdrasil 0.5, which new clusters run. On 0.4 (Debian 12's own) the notice was measured
  // not to get through: no peer acted on it and the session froze 13.4 s, as it did before.
  // The cluster has just formed: n0's and n1's yggdrasil started before n2 joined, so they
  // refuse n2's key when it dials in from its new address (AllowedPublicKeys is read at start).
  // n2 asks them to dial it back there (node/dial-back.ts); before, they let it in only once the
  // lock-out rule restarted their yggdrasil (6.6–13 s frozen).
  it("just formed, the moved member's neighbours dial it back at its new address and drop its old peerings on its notice (Yggdrasil 0.5)", async (t) => {
    const y05 = yggdrasil05();
    if ("skip" in y05) return t.skip(y05.skip);
    const { bin } = y05;
    const lab = await Lab.create({ nodes: 3, topology: "full" });
    labs.push(lab);
    const c = await new LabCluster(lab, { RAPTIFORMICA_YGGDRASIL: bin }).form(3);
    const moved = await c.identity(2);
    const r = await phoneStory(c, { from: 0, to: 2, newAddress: "198.18.0.201", prefix: 16, device: "seg0", maxWaitMs: 90_000 });
    process.stderr.write(`# phone story, just formed (0.5): the SSH session froze for ${(r.freezeMs / 1000).toFixed(1)} s, then delivered ${r.linesAfter} lines\n`);
    assert.ok(r.alive && r.linesAfter >= 30, `the session resumed after the move (${r.linesAfter} lines, froze ${r.freezeMs} ms)`);
    // Nobody restarted yggdrasil to let n2 in: n0 and n1 dialled it back at its new address.
    for (const i of [0, 1]) {
      const agentLog = readFileSync(join(lab.nodes[i]!.cacheDir, "node", "log", "agent.log"), "utf8");
      assert.doesNotMatch(agentLog, /not allowed in yet: restarting yggdrasil/, `n${i} restarted yggdrasil for a key`);
      assert.match(agentLog, /asked to be dialled back at 198\.18\.0\.201 \(it moved\): dialling it there/, `n${i} dialled n2 back`);
    }
    const peers = await Promise.all([0, 1].map((i) => new YggdrasilAdmin(join(lab.nodes[i]!.cacheDir, "node", "run", "ygg.sock"), "0.5").getPeers()));
    assert.ok(
      peers.flat().some((p) => p.up && p.inbound === false && p.publicKey === moved.publicKey && p.remote.includes("198.18.0.201")),
      `a peering dialled to n2's new address: ${JSON.stringify(peers.flat().map((p) => [p.publicKey.slice(0, 8), p.remote, p.up, p.inbound]))}`,
    );
    // n2 told its peers (node/moved-notice.ts): n0, the session's end, closed the peerings to
    // n2's old address at once, rather than sending into them until yggdrasil's own timeout.
    const old = lab.nodes[2]!.addresses[0]!;
    const log = readFileSync(join(lab.nodes[0]!.cacheDir, "node", "log", "agent.log"), "utf8");
    assert.match(log, new RegExp(`${moved.meshAddress} moved away from ${old.replaceAll(".", "\\.")}: closing \\d+ peering`), "n0 acted on n2's moved notice");
  });
});
