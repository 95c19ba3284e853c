/**
 * The agent however it is started (by `mesh`, or by its systemd unit, which makes no
 * directories): it takes its pidfile in a node dir that does not exist yet, and its unit keeps
 * restarting it however often it fails.
 */
import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { acquireAgentLock } from "../../src/node/agent-lock.ts";
import { renderUnit } from "../../src/node/systemd.ts";
import { nodePaths } from "../../src/node/paths.ts";

describe("the agent started by systemd", () => {
  it("takes its pidfile when the node's run dir does not exist yet (made 0700)", () => {
    const root = mkdtempSync(join(tmpdir(), "rf-agent-lock-"));
    try {
      const node = nodePaths(join(root, "node"));
      const pidFile = node.agentPid;
      const lock = acquireAgentLock(node);
      assert.equal(lock.ok, true);
      assert.equal(readFileSync(pidFile, "utf8").trim(), String(process.pid));
      assert.equal(statSync(join(root, "node", "run")).mode & 0o777, 0o700);
      if (lock.ok) lock.release();
      assert.ok(!existsSync(pidFile));
      assert.ok(!existsSync(node.agentLock));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("its unit restarts it on every exit and never stops trying (no start limit)", () => {
    const unit = renderUnit({ node: "/usr/bin/node", nodeFlags: [], script: "/usr/etc/raptiformica/dist/raptiformica.mjs", cacheDir: "/root/.raptiformica.d", home: "/root" });
    const section = (name: string) => unit.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? "";
    assert.match(section("Unit"), /^StartLimitIntervalSec=0$/m);
    assert.match(section("Service"), /^Restart=always$/m);
    assert.match(section("Install"), /^WantedBy=multi-user\.target$/m);
  });
});
