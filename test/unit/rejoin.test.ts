import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cachePaths } from "../../src/config/paths.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { claimText } from "../../src/node/agent-lock.ts";
import { processStart } from "../../src/node/process-identity.ts";
import { rejoinNow } from "../../src/ops/node.ts";
import { UserError } from "../../src/util/errors.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function machine() {
  const root = mkdtempSync(join(tmpdir(), "rf-rejoin-"));
  dirs.push(root);
  const paths = cachePaths(root);
  return { paths, node: nodePaths(paths.node) };
}

describe("members --rejoin (ops/node.ts rejoinNow)", () => {
  it("refuses on a machine that never ran mesh, saying so; nothing is started", async () => {
    const ctx = machine();
    await assert.rejects(rejoinNow(ctx), (e: unknown) => e instanceof UserError && /not a cluster member \(no node state in .*\); run `raptiformica mesh` first/.test(e.message));
  });

  it("tells the running agent to reconcile now (SIGUSR1) instead of starting another", async () => {
    const ctx = machine();
    mkdirSync(ctx.node.yggdrasilDir, { recursive: true });
    mkdirSync(ctx.node.runDir, { recursive: true });
    // A stand-in agent: its command line names `agent`, as the real one's does; it exits 0 on SIGUSR1.
    const script = 'process.on("SIGUSR1", () => process.exit(0)); console.log("ready"); setTimeout(() => process.exit(3), 10000)';
    const child = spawn(process.execPath, ["-e", script, "agent"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      await new Promise((resolve) => child.stdout.once("data", resolve));
      writeFileSync(ctx.node.agentLock, claimText(child.pid!, processStart(child.pid!)!.start));
      assert.equal(await rejoinNow(ctx), "poked");
      assert.equal(await exited, 0, "the agent got SIGUSR1");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
