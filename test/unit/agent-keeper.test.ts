/**
 * The agent's keeper (bin/raptiformica-agent-keeper) with a stand-in agent: it runs the program
 * again whenever it exits, for any reason, pausing 1 s then 2 s while it keeps exiting at once;
 * it watches instead of starting a second one while the claim names a live process; SIGTERM
 * stops it and the program it started.
 */
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { claimText } from "../../src/node/agent-lock.ts";
import { processStart } from "../../src/node/process-identity.ts";
import { keeperScript } from "../../src/node/agent-keeper.ts";
import { waitUntil } from "../../src/util/wait.ts";
import { ROOT } from "../helpers/cli.ts";

const dirs: string[] = [];
const procs: ChildProcess[] = [];
after(() => {
  procs.forEach((p) => p.kill("SIGKILL"));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function keeper(program: string[]) {
  const dir = mkdtempSync(join(tmpdir(), "rf-keeper-"));
  dirs.push(dir);
  const lock = join(dir, "agent.lock");
  const log = join(dir, "agent.log");
  const k = spawn("sh", [keeperScript(ROOT), lock, log, ...program], { stdio: "ignore" });
  procs.push(k);
  const text = () => {
    try {
      return readFileSync(log, "utf8");
    } catch {
      return "";
    }
  };
  return { k, lock, log, starts: () => (text().match(/^start /gm) ?? []).length };
}

describe("the agent's keeper", () => {
  it("runs the program again each time it exits, 1 s then 2 s later; SIGTERM stops it", async () => {
    const { k, starts, log } = keeper(["sh", "-c", 'echo "start $$"; exit 3']);
    const t0 = Date.now();
    assert.ok(await waitUntil(() => starts() >= 3, { timeoutMs: 8000, intervalMs: 50 }), readFileSync(log, "utf8"));
    const took = Date.now() - t0;
    assert.ok(took >= 2500 && took < 6000, `three starts took ${took} ms (pauses of 1 s and 2 s)`);
    assert.match(readFileSync(log, "utf8"), /the agent \(pid \d+\) exited with status 3 after 0 s; starting it again in 1 s/);
    k.kill("SIGTERM");
    assert.ok(await waitUntil(() => k.exitCode !== null || k.signalCode !== null, { timeoutMs: 5000, intervalMs: 50 }));
  });

  it("exits once the node's state dir is gone (removed without clean): no keeper outlives its node", async () => {
    const { k, lock, starts } = keeper(["sh", "-c", 'echo "start $$"; exit 3']);
    assert.ok(await waitUntil(() => starts() >= 1, { timeoutMs: 5000, intervalMs: 50 }));
    rmSync(join(lock, ".."), { recursive: true, force: true });
    assert.ok(await waitUntil(() => k.exitCode !== null || k.signalCode !== null, { timeoutMs: 8000, intervalMs: 50 }), "the keeper is still running");
  });

  it("kill -9 of the program: it runs again within about a second; while the claim names a live process it only watches; SIGTERM stops keeper and program", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rf-keeper-pid-"));
    dirs.push(dir);
    const pidFile = join(dir, "pid");
    const { k, lock, starts } = keeper(["sh", "-c", 'echo "start $$"; echo $$ > "$1"; exec sleep 60', "agent", pidFile]);
    // 0 while the program has truncated the file and not yet written its pid: never a pid here
    // (process.kill(0, 0) signals our own group and "succeeds").
    const pidNow = () => Number(readFileSync(pidFile, "utf8").trim() || 0);
    const p1 = await waitUntil(() => { try { return pidNow() || undefined; } catch { return undefined; } }, { timeoutMs: 5000, intervalMs: 20 });
    assert.ok(p1);
    process.kill(p1, "SIGKILL");
    const t0 = Date.now();
    const p2 = await waitUntil(() => { const p = pidNow(); return p > 0 && p !== p1 && alive(p) ? p : undefined; }, { timeoutMs: 5000, intervalMs: 20 });
    assert.ok(p2, "started again");
    assert.ok(Date.now() - t0 < 2500, `after ${Date.now() - t0} ms`);

    // Another live process holds the claim (an agent started by hand): the keeper starts none.
    writeFileSync(lock, claimText(process.pid, processStart(process.pid)!.start));
    process.kill(p2, "SIGKILL");
    const n = starts();
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(starts(), n, "nothing started while the claim holds");
    // The claim's holder is gone: the keeper starts the program again.
    rmSync(lock);
    const p3 = await waitUntil(() => { const p = pidNow(); return p > 0 && p !== p2 && alive(p) ? p : undefined; }, { timeoutMs: 5000, intervalMs: 50 });
    assert.ok(p3, "started once the claim no longer held");

    k.kill("SIGTERM");
    assert.ok(await waitUntil(() => !alive(p3), { timeoutMs: 5000, intervalMs: 20 }), "the program stopped with the keeper");
    assert.ok(await waitUntil(() => k.exitCode !== null || k.signalCode !== null, { timeoutMs: 5000, intervalMs: 20 }), "the keeper exited");
  });
});
