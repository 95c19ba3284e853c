import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startYggdrasil, stopYggdrasil, yggdrasilArgv } from "../../src/mesh/yggdrasil/process.ts";

describe("yggdrasil process", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-ygg-proc-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function script(name: string, body: string): string {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  }

  it("runs the binary on the config file, after an optional prefix", () => {
    assert.deepEqual(yggdrasilArgv({ binary: "yggdrasil", configFile: "/c/y.conf" }), ["yggdrasil", "-useconffile", "/c/y.conf", "-logto", "stdout"]);
    assert.deepEqual(yggdrasilArgv({ binary: "/b/y", configFile: "/c", prefix: ["ip", "netns", "exec", "n1"] }), ["ip", "netns", "exec", "n1", "/b/y", "-useconffile", "/c", "-logto", "stdout"]);
  });

  it("appends stdout and stderr to a 0600 log, and stops with SIGTERM", async () => {
    const bin = script("fake-ygg", 'trap "echo bye; exit 0" TERM; echo "out $*"; echo "err" >&2; while :; do sleep 0.1; done');
    const logFile = join(dir, "log", "y.log");
    const child = startYggdrasil({ binary: bin, configFile: "/etc/y.conf", logFile });
    for (let i = 0; i < 50 && !readFileSync(logFile, "utf8").includes("err"); i++) await sleep(50);
    await stopYggdrasil(child, 3_000);
    assert.equal(child.exitCode, 0);
    const log = readFileSync(logFile, "utf8");
    assert.match(log, /out -useconffile \/etc\/y\.conf -logto stdout/);
    assert.match(log, /err/);
    assert.match(log, /bye/);
    assert.equal(statSync(logFile).mode & 0o777, 0o600);
  });

  it("kills a child that ignores SIGTERM once the time is up", async () => {
    const bin = script("stubborn", 'trap "" TERM; echo ready; while :; do sleep 0.1; done');
    const logFile = join(dir, "stubborn.log");
    const child = startYggdrasil({ binary: bin, configFile: "/x", logFile });
    for (let i = 0; i < 50 && !readFileSync(logFile, "utf8").includes("ready"); i++) await sleep(50);
    const started = Date.now();
    await stopYggdrasil(child, 300);
    assert.equal(child.signalCode, "SIGKILL");
    assert.ok(Date.now() - started < 2_000);
  });

  it("records a binary that cannot start instead of crashing", async () => {
    const logFile = join(dir, "missing.log");
    const child = startYggdrasil({ binary: join(dir, "no-such-yggdrasil"), configFile: "/x", logFile });
    await new Promise((r) => child.once("close", r));
    assert.match(readFileSync(logFile, "utf8"), /could not start .*no-such-yggdrasil: spawn .* ENOENT/);
    await stopYggdrasil(child); // already gone: returns at once
  });
});
