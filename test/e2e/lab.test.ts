import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { cleanupStaleLabs, Lab, listLabs, REGISTRY_DIR, waitFor } from "../lab/index.ts";

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  for (const tool of ["ip", "ping"]) {
    if (spawnSync(tool, ["-V"], { stdio: "ignore" }).error) return `needs ${tool} (apt-get install iproute2 iputils-ping)`;
  }
  return undefined;
}
const skip = missing();

async function pings(lab: Lab, from: number, address: string): Promise<boolean> {
  const r = await lab.exec(from, ["ping", "-c1", "-W1", address], { timeoutMs: 5_000 });
  return r.exitCode === 0;
}

async function nsList(): Promise<string[]> {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return r.stdout.split("\n").map((l) => l.split(" ")[0] ?? "").filter(Boolean);
}

async function ipv4Of(lab: Lab, i: number, dev: string): Promise<string> {
  const r = await lab.exec(i, ["ip", "-4", "-br", "address", "show", "dev", dev]);
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.trim().split(/\s+/).slice(2).join(" ");
}

describe("waitFor", () => {
  it("returns the first ready value and names the label on timeout", async () => {
    let n = 0;
    assert.equal(await waitFor("third try", () => (++n >= 3 ? n : false), { timeoutMs: 2_000, intervalMs: 1 }), 3);
    await assert.rejects(
      waitFor("the impossible", () => {
        throw new Error("not yet");
      }, { timeoutMs: 50, intervalMs: 10 }),
      /waiting for the impossible; last: not yet/,
    );
    // An attempt that never settles still ends at the deadline.
    await assert.rejects(waitFor("a hang", () => new Promise<never>(() => undefined), { timeoutMs: 50 }), /waiting for a hang/);
  });
});

describe("network lab", { skip }, () => {
  let full: Lab;
  let line: Lab;
  let tree: Lab;
  const labs: Lab[] = [];

  before(async () => {
    await cleanupStaleLabs();
    [full, line, tree] = await Promise.all([
      Lab.create({ nodes: 3, topology: "full" }),
      Lab.create({ nodes: 3, topology: "line" }),
      Lab.create({ nodes: 7, topology: "tree" }),
    ]);
    labs.push(full, line, tree);
  });

  after(async () => {
    const results = await Promise.allSettled(labs.map((l) => l.destroy()));
    for (const r of results) if (r.status === "rejected") throw r.reason;
  });

  it("gives parallel labs distinct ids and namespaces", () => {
    assert.equal(new Set(labs.map((l) => l.id)).size, 3);
    for (const l of labs) for (const n of l.nodes) assert.match(n.ns, new RegExp(`^rfl-${l.id}-n${n.index}$`));
  });

  it("full: everyone pings everyone, over IPv4 and IPv6 link-local", async () => {
    assert.deepEqual(full.nodes.map((n) => n.addresses), [["198.18.0.1"], ["198.18.0.2"], ["198.18.0.3"]]);
    const pairs = [0, 1, 2].flatMap((a) => [0, 1, 2].filter((b) => b !== a).map((b) => [a, b] as const));
    const ok = await Promise.all(pairs.map(([a, b]) => pings(full, a, full.addressOf(b, a))));
    assert.deepEqual(ok, pairs.map(() => true), `pairs ${JSON.stringify(pairs)}`);
    const v6 = await full.exec(1, ["ip", "-6", "-br", "address", "show", "dev", "seg0", "scope", "link"]);
    const linkLocal = /fe80::[0-9a-f:]+/.exec(v6.stdout)?.[0];
    assert.ok(linkLocal, `n1 has an IPv6 link-local address: ${v6.stdout}${v6.stderr}`);
    assert.ok(await pings(full, 0, `${linkLocal}%seg0`), "n0 pings n1 over IPv6");
  });

  it("line: neighbours reach each other, 0 cannot reach 2 (no forwarding)", async () => {
    assert.deepEqual(line.neighbours(1), [0, 2]);
    assert.ok(await pings(line, 0, line.addressOf(1, 0)));
    assert.ok(await pings(line, 1, line.addressOf(0, 1)));
    assert.ok(await pings(line, 1, line.addressOf(2, 1)));
    assert.ok(await pings(line, 2, line.addressOf(1, 2)));
    for (const address of line.nodes[2]!.addresses) assert.equal(await pings(line, 0, address), false, `0 reaches ${address}`);
    for (const address of line.nodes[0]!.addresses) assert.equal(await pings(line, 2, address), false, `2 reaches ${address}`);
    const fwd = await line.exec(1, ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.disable_ipv6"]);
    assert.deepEqual(fwd.stdout.trim().split("\n"), ["0", "0"]);
  });

  it("cutLink stops a link and restoreLink brings it back with the same addresses", async () => {
    const before = await ipv4Of(line, 0, "to-n1");
    assert.equal(before, "198.19.0.1/30");
    await line.cutLink(0, 1);
    assert.equal(await pings(line, 0, line.addressOf(1, 0)), false);
    assert.equal(await pings(line, 1, line.addressOf(0, 1)), false);
    assert.ok(await pings(line, 1, line.addressOf(2, 1)), "the other link is untouched");
    await line.restoreLink(1, 0);
    await waitFor("0 -> 1 after restore", () => pings(line, 0, line.addressOf(1, 0)), { timeoutMs: 5_000 });
    assert.ok(await pings(line, 1, line.addressOf(0, 1)));
    assert.equal(await ipv4Of(line, 0, "to-n1"), before);
    await assert.rejects(line.cutLink(0, 2), /share no link/);
    await assert.rejects(full.cutLink(0, 1), /unplug/);
  });

  it("full: unplug takes a node off the segment, plug brings it back", async () => {
    await full.unplug(2);
    assert.equal(await pings(full, 0, full.addressOf(2)), false);
    assert.ok(await pings(full, 0, full.addressOf(1)));
    await full.plug(2);
    await waitFor("0 -> 2 after plug", () => pings(full, 0, full.addressOf(2)), { timeoutMs: 5_000 });
  });

  it("tree of 7 has the binary-tree links, on real interfaces", async () => {
    assert.deepEqual(
      tree.links.map((l) => [l.a, l.b]),
      [[0, 1], [0, 2], [1, 3], [1, 4], [2, 5], [2, 6]],
    );
    assert.deepEqual(tree.neighbours(1), [0, 3, 4]);
    assert.deepEqual(tree.neighbours(6), [2]);
    for (const l of tree.links) {
      assert.equal(await ipv4Of(tree, l.a, l.ifA), `${l.addrA}/30`);
      assert.equal(await ipv4Of(tree, l.b, l.ifB), `${l.addrB}/30`);
    }
    assert.ok(await pings(tree, 4, tree.addressOf(1, 4)));
    assert.equal(await pings(tree, 3, tree.addressOf(4)), false, "siblings only meet through their parent");
  });

  it("killNode kills everything in that node and nothing elsewhere", async () => {
    const victim = line.spawn(1, ["sleep", "1000"], { label: "victim" });
    const bystander = line.spawn(2, ["sleep", "1000"], { label: "bystander" });
    // Started by exec, not spawn: killNode must find it through the namespace, not our records.
    const stray = await line.exec(1, ["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"]);
    const strayPid = Number(stray.stdout.trim());
    assert.ok(strayPid > 0, stray.stderr);
    await waitFor("both sleeps running", () => victim.pid !== undefined && bystander.pid !== undefined, { timeoutMs: 2_000 });
    await line.killNode(1);
    await waitFor("victim exit", () => victim.signalCode === "SIGKILL", { timeoutMs: 2_000 });
    // An orphan is reaped by pid 1 whenever it gets to it: a zombie counts as gone.
    const gone = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
      } catch {
        return true;
      }
    };
    await waitFor("the exec'd sleep is gone too", () => gone(strayPid), { timeoutMs: 2_000, intervalMs: 20 });
    assert.equal(bystander.exitCode, null);
    assert.equal(bystander.signalCode, null);
    process.kill(bystander.pid!, 0);
    const r = await line.exec(1, ["true"]);
    assert.equal(r.exitCode, 0, "the node itself still works");
    await line.killNode(2);
    await waitFor("bystander exit", () => bystander.signalCode === "SIGKILL", { timeoutMs: 2_000 });
  });

  it("exec runs with the node's HOME, cache dir and extra env", async () => {
    const n = line.nodes[2]!;
    const r = await line.exec(2, ["sh", "-c", 'printf "%s\\n" "$HOME" "$RAPTIFORMICA_CACHE_DIR" "$EXTRA" "$(cat)"'], {
      env: { EXTRA: "x" },
      input: "stdin",
    });
    assert.deepEqual(r.stdout.split("\n").slice(0, 4), [n.home, n.cacheDir, "x", "stdin"]);
    const slow = await line.exec(2, ["sleep", "10"], { timeoutMs: 200 });
    assert.equal(slow.timedOut, true);
  });

  it("addNode on a full lab gets a working address", async () => {
    const node = await full.addNode();
    assert.equal(node.index, 3);
    assert.deepEqual(node.addresses, ["198.18.0.4"]);
    assert.ok(await pings(full, 3, full.addressOf(0)));
    assert.ok(await pings(full, 0, full.addressOf(3)));
    const added = await line.addNode();
    assert.deepEqual(line.neighbours(added.index), [2]);
    assert.ok(await pings(line, 3, line.addressOf(2, 3)));
  });

  it("cleanupStaleLabs removes leftovers of dead runs and keeps live labs", async () => {
    const ghost = "rfl-0dead0-n0";
    spawnSync("ip", ["netns", "add", ghost]);
    assert.ok((await nsList()).includes(ghost));
    const removed = await cleanupStaleLabs();
    assert.ok(removed.includes("0dead0"));
    assert.ok(!(await nsList()).includes(ghost));
    const alive = (await listLabs()).map((l) => l.id);
    for (const l of labs) assert.ok(alive.includes(l.id), `lab ${l.id} kept`);
  });

  it("destroy removes namespaces, processes and directories", async () => {
    const lab = await Lab.create({ nodes: 2, topology: "line" });
    const child = lab.spawn(0, ["sleep", "1000"]);
    await lab.destroy();
    await waitFor("spawned child reaped", () => child.signalCode === "SIGKILL", { timeoutMs: 2_000 });
    assert.deepEqual((await nsList()).filter((n) => n.includes(lab.id)), []);
    assert.equal(existsSync(lab.dir), false);
    assert.equal(existsSync(`${REGISTRY_DIR}/rfl-${lab.id}.json`), false);
    await assert.rejects(lab.exec(0, ["true"]), /destroyed/);
    await lab.destroy(); // idempotent
  });
});
