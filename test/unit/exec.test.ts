import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { run, runShell } from "../../src/util/exec.ts";

describe("run", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-exec-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is done when the program exits, not when a background job it left closes its output", async () => {
    const since = Date.now();
    const out = await runShell("echo out; echo err >&2; sleep 20 &", { cwd: dir, timeoutMs: 60_000 });
    const took = Date.now() - since;
    assert.equal(out.exitCode, 0);
    assert.equal(out.stdout, "out\n");
    assert.equal(out.stderr, "err\n");
    assert.ok(took < 5000, `took ${took} ms: waited for the background job`);
  });

  it("leaves the background job running, and it may still write", async () => {
    const marker = join(dir, "late-done");
    const out = await runShell(`(sleep 0.5; echo late; echo late >&2; touch "${marker}") &`, { cwd: dir, timeoutMs: 60_000 });
    assert.equal(out.exitCode, 0);
    const until = Date.now() + 5000;
    while (!existsSync(marker) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(marker), "the background job finished after writing to its inherited output");
  });

  it("captures everything the program wrote, however much", async () => {
    const out = await runShell("head -c 300000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero | tr '\\0' y >&2", { cwd: dir, timeoutMs: 60_000 });
    assert.equal(out.exitCode, 0);
    assert.equal(out.stdout.length, 300_000);
    assert.equal(out.stderr.length, 200_000);
  });

  it("writes large input to a program that reads it, and does not fail one that ignores it", async () => {
    const input = "z".repeat(1_000_000);
    const reads = await run("wc", ["-c"], { input, timeoutMs: 60_000 });
    assert.equal(reads.stdout.trim(), "1000000");
    const ignores = await run("true", [], { input, timeoutMs: 60_000 });
    assert.equal(ignores.exitCode, 0);
  });

  it("kills the whole process group on timeout", async () => {
    const since = Date.now();
    const out = await runShell("sleep 30 & sleep 30", { cwd: dir, timeoutMs: 300 });
    assert.equal(out.timedOut, true);
    assert.notEqual(out.exitCode, 0);
    assert.ok(Date.now() - since < 5000);
  });

  it("reports a program that cannot be started (an environment string over 128 KiB) instead of throwing", async () => {
    const out = await run("true", [], { env: { PATH: process.env["PATH"], BIG: "b".repeat(200_000) }, timeoutMs: 10_000 });
    assert.equal(out.exitCode, 127);
    assert.match(out.failedToStart ?? "", /E2BIG/);
    const missing = await run("/nonexistent/program", [], { timeoutMs: 10_000 });
    assert.equal(missing.exitCode, 127);
    assert.match(missing.failedToStart ?? "", /ENOENT/);
  });
});
