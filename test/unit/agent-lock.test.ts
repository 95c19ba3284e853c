/**
 * Which agent runs for a node (src/node/agent-lock.ts): a claim names one process for its whole
 * life (boot id + start tick), so a claim or pidfile left from an earlier boot — the cache dir
 * survives reboots — is never taken for a live agent, even when its pid now belongs to a live
 * process whose command line says "agent".
 */
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { acquireAgentLock, claimHolder, claimText, legacyHolder, parseClaim, runningAgent } from "../../src/node/agent-lock.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { bootId, processStart } from "../../src/node/process-identity.ts";

const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  children.forEach((c) => c.kill("SIGKILL"));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function node() {
  const root = mkdtempSync(join(tmpdir(), "rf-agent-lock-"));
  dirs.push(root);
  const n = nodePaths(join(root, "node"));
  mkdirSync(n.runDir, { recursive: true });
  return { cache: root, n };
}

/** A live process that is not an agent of this node, though its command line ends in "agent". */
async function impostor(env: NodeJS.ProcessEnv = {}): Promise<number> {
  const c = spawn(process.execPath, ["-e", 'console.log("up"); setInterval(() => {}, 1000)', "raptiformica", "agent"], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, ...env } });
  children.push(c);
  await new Promise((r) => c.stdout!.once("data", r));
  return c.pid!;
}

const ANOTHER_BOOT = "00000000-0000-4000-8000-000000000000";

describe("the agent's claim (pure decisions)", () => {
  const live = { start: "b00t/1234", state: "S" };
  it("holds only while the process behind the pid started at the recorded tick of the recorded boot", () => {
    assert.equal(claimHolder("41 b00t 1234\n", () => live), 41);
    assert.equal(claimHolder("41 other-boot 1234\n", () => live), undefined, "a claim from another boot");
    assert.equal(claimHolder("41 b00t 999\n", () => live), undefined, "the pid handed out again");
    assert.equal(claimHolder("41 b00t 1234\n", () => ({ ...live, state: "Z" })), undefined, "a zombie");
    assert.equal(claimHolder("41 b00t 1234\n", () => undefined), undefined, "no such process");
  });

  it("a claim is one line `<pid> <boot id> <ticks>`; anything else is none", () => {
    assert.deepEqual(parseClaim(claimText(41, "b00t-1/1234")), { pid: 41, start: "b00t-1/1234" });
    for (const bad of ["", "41\n", "41 b00t", "x b00t 1", "0 b00t 1\n", '{"pid":41}']) assert.equal(parseClaim(bad), undefined, bad);
  });

  it("an old pidfile alone names an agent only when that process runs `agent` for this very cache dir", () => {
    const cmd = ["/usr/bin/node", "/usr/etc/raptiformica/dist/raptiformica.mjs", "agent", ""].join("\0");
    assert.equal(legacyHolder(cmd, "HOME=/root\0RAPTIFORMICA_CACHE_DIR=/root/.raptiformica.d\0", "/root/.raptiformica.d"), true);
    assert.equal(legacyHolder(cmd, "HOME=/root\0", "/root/.raptiformica.d"), false, "no cache dir in its environment");
    assert.equal(legacyHolder(cmd, "RAPTIFORMICA_CACHE_DIR=/elsewhere\0", "/root/.raptiformica.d"), false, "another node's agent");
    assert.equal(legacyHolder(["sh", "-c", "ssh-agent"].join("\0"), "RAPTIFORMICA_CACHE_DIR=/root/.raptiformica.d\0", "/root/.raptiformica.d"), false);
    // The agent's keeper, whose argv ends with the agent's: after a docker restart it can hold
    // the pid the old agent wrote (seen in CI: every start of the agent then gave way to it).
    const keeper = ["sh", "/usr/etc/raptiformica/bin/raptiformica-agent-keeper", "/root/.raptiformica.d/node/run/agent.lock", "/root/.raptiformica.d/node/log/agent.log", "/usr/bin/node", "--jitless", "/usr/etc/raptiformica/dist/raptiformica.mjs", "agent"].join("\0");
    assert.equal(legacyHolder(keeper, "RAPTIFORMICA_CACHE_DIR=/root/.raptiformica.d\0", "/root/.raptiformica.d"), false, "the keeper is not the agent");
    assert.equal(legacyHolder(["/usr/local/bin/raptiformica", "agent"].join("\0"), "RAPTIFORMICA_CACHE_DIR=/root/.raptiformica.d\0", "/root/.raptiformica.d"), true, "the installed launcher");
  });
});

describe("the agent's claim (real processes)", () => {
  it("a claim from another boot whose pid is a live process calling itself agent: the agent starts", async () => {
    const { n } = node();
    const pid = await impostor();
    const ticks = processStart(pid)!.start.split("/")[1]!;
    writeFileSync(n.agentLock, `${pid} ${ANOTHER_BOOT} ${ticks}\n`);
    writeFileSync(n.agentPid, `${pid}\n`);
    assert.equal(runningAgent(n), undefined);
    const lock = acquireAgentLock(n);
    assert.equal(lock.ok, true, JSON.stringify(lock));
    assert.equal(runningAgent(n), process.pid);
    assert.equal(readFileSync(n.agentPid, "utf8"), `${process.pid}\n`, "the bare pid, for people");
    assert.equal(readFileSync(n.agentLock, "utf8"), claimText(process.pid, `${bootId()}/${processStart(process.pid)!.start.split("/")[1]}`));
    if (lock.ok) lock.release();
    assert.equal(runningAgent(n), undefined);
  });

  it("a bare pidfile (older version) naming a live process calling itself agent, not of this node: the agent starts", async () => {
    const { n } = node();
    writeFileSync(n.agentPid, `${await impostor()}\n`);
    const lock = acquireAgentLock(n);
    assert.equal(lock.ok, true, JSON.stringify(lock));
    if (lock.ok) lock.release();
  });

  it("a live agent's claim is respected, and so is an older version's agent of this very node", async () => {
    const { cache, n } = node();
    const pid = await impostor();
    writeFileSync(n.agentLock, claimText(pid, processStart(pid)!.start));
    assert.equal(runningAgent(n), pid);
    assert.deepEqual(acquireAgentLock(n), { ok: false, pid });

    const legacy = node();
    const old = await impostor({ RAPTIFORMICA_CACHE_DIR: legacy.cache });
    writeFileSync(legacy.n.agentPid, `${old}\n`);
    assert.equal(runningAgent(legacy.n), old);
    assert.deepEqual(acquireAgentLock(legacy.n), { ok: false, pid: old });
    assert.notEqual(cache, legacy.cache);
  });

  it("a claim left by a killed agent of this boot is taken over at once", async () => {
    const { n } = node();
    const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    await new Promise((r) => c.once("spawn", r));
    writeFileSync(n.agentLock, claimText(c.pid!, processStart(c.pid!)!.start));
    assert.equal(runningAgent(n), c.pid);
    c.kill("SIGKILL");
    await new Promise((r) => c.once("exit", r));
    assert.equal(runningAgent(n), undefined);
    const lock = acquireAgentLock(n);
    assert.equal(lock.ok, true);
    if (lock.ok) lock.release();
  });
});
