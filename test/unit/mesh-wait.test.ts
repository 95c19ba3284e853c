/**
 * `mesh` waiting for its node (ops/node.ts waitForReady): it never quotes a status the agent
 * wrote before `mesh` started (the one of the previous boot said "ready" while no agent ran),
 * and it notices within seconds that no agent runs — starts one once, then says so — instead
 * of waiting out its whole timeout.
 */
import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { nodePaths } from "../../src/node/paths.ts";
import type { AgentStatus } from "../../src/node/status.ts";
import { notReadyReason, waitForReady } from "../../src/ops/node.ts";
import { UserError } from "../../src/util/errors.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function node() {
  const root = mkdtempSync(join(tmpdir(), "rf-mesh-wait-"));
  dirs.push(root);
  const n = nodePaths(join(root, "node"));
  mkdirSync(n.runDir, { recursive: true });
  return n;
}

const status = (o: Partial<AgentStatus>): AgentStatus => ({ pid: 41, phase: "ready", role: "proxy", consensus: "etcd member", kv: "connected", updatedAt: 0, startedAt: 0, ...o }) as AgentStatus;

describe("mesh waiting for the agent", () => {
  it("a status from before mesh started is not quoted: never 'did not become ready … it is \"ready\"'", () => {
    const since = Date.now();
    assert.equal(notReadyReason(status({ updatedAt: since - 60_000 }), since), "the agent has not reported since `mesh` started");
    assert.equal(notReadyReason(undefined, since), "the agent has not reported since `mesh` started");
    assert.equal(notReadyReason(status({ phase: "meshed", consensus: "joining", updatedAt: since }), since), 'it is "meshed" (joining)');
  });

  it("timed out with only an old 'ready' status: the message does not call the node ready", async () => {
    const n = node();
    const since = Date.now();
    writeFileSync(n.status, JSON.stringify(status({ updatedAt: since - 120_000 })));
    await assert.rejects(waitForReady(n, 300, since, "agent.log", { runs: () => true }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /did not become ready within 0 s: the agent has not reported since `mesh` started/);
      assert.doesNotMatch(e.message, /"ready"/);
      return true;
    });
  });

  it("a 'ready' the agent stopped for a newer build wrote after mesh began is not the new agent's: mesh waits for the new one", async () => {
    const n = node();
    const since = Date.now();
    writeFileSync(n.status, JSON.stringify(status({ pid: 41, updatedAt: since + 10 })));
    const waiting = waitForReady(n, 5000, since, "agent.log", { runs: () => true, current: () => 42 });
    setTimeout(() => writeFileSync(n.status, JSON.stringify(status({ pid: 42, updatedAt: Date.now(), role: "voter" }))), 300);
    const got = await waiting;
    assert.equal(got.pid, 42);
    assert.equal(got.role, "voter");
  });

  it("no agent runs: started once more after the grace, then said so well before the timeout", async () => {
    const n = node();
    const since = Date.now();
    writeFileSync(n.status, JSON.stringify(status({ updatedAt: since - 120_000 })));
    let restarts = 0;
    const t0 = Date.now();
    await assert.rejects(
      waitForReady(n, 60_000, since, "/x/agent.log", { runs: () => false, restart: async () => void restarts++, graceMs: 300 }),
      (e: unknown) => e instanceof UserError && /^No agent runs for this node: it exited, was started again and exited again, and none has run for 0 s\. See \/x\/agent\.log/.test(e.message),
    );
    assert.equal(restarts, 1);
    assert.ok(Date.now() - t0 < 5000, `gave up after ${Date.now() - t0} ms, not the 60 s timeout`);
  });

  it("an agent that comes back (its keeper restarted it) and gets ready: mesh succeeds", async () => {
    const n = node();
    const since = Date.now();
    let runs = false;
    setTimeout(() => (runs = true), 200);
    setTimeout(() => writeFileSync(n.status, JSON.stringify(status({ updatedAt: Date.now() }))), 400);
    const s = await waitForReady(n, 10_000, since, "agent.log", { runs: () => runs, restart: async () => assert.fail("not restarted"), graceMs: 2000 });
    assert.equal(s.phase, "ready");
  });
});
