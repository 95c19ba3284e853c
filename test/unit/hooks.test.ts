import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ENV_EVENT_MAX_BYTES, fireHook, hookEnv, type HookEvent, type HookRunnerOptions } from "../../src/hooks/runner.ts";
import { createLogger } from "../../src/util/log.ts";

const H = "raptiformica/platform/default/hooks/cluster_change";

describe("hook events", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-hooks-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const opts: HookRunnerOptions = {
    installDir: dir,
    cacheDir: dir,
    log: createLogger(false, (l) => warnings.push(l)),
    live: false,
  };

  /** An event whose JSON is about `bytes` long, like a cluster_change batch of many keys. */
  function bigEvent(bytes: number): HookEvent {
    const changes = Array.from({ length: Math.ceil(bytes / 100) }, (_, i) => ({ type: "put", key: `raptiformica/meshnet/neighbours/${String(i).padStart(64, "0")}` }));
    return { hook: "cluster_change", time: new Date().toISOString(), changes };
  }

  it("keeps the environment copy while it fits in one environment string (128 KiB)", () => {
    const small = { hook: "h", time: "t", x: "y" };
    assert.equal(hookEnv(small, opts)["RAPTIFORMICA_EVENT"], JSON.stringify(small));
    const event = { hook: "h", time: "t", blob: "" };
    event.blob = "a".repeat(ENV_EVENT_MAX_BYTES - JSON.stringify(event).length);
    assert.equal(hookEnv(event, opts)["RAPTIFORMICA_EVENT"], JSON.stringify(event), "exactly at the limit");
    event.blob += "a";
    assert.equal(hookEnv(event, opts)["RAPTIFORMICA_EVENT"], undefined, "one byte over");
    // Multi-byte characters count in bytes, as the kernel counts them.
    const wide = { hook: "h", time: "t", blob: "é".repeat(70_000) };
    assert.equal(hookEnv(wide, opts)["RAPTIFORMICA_EVENT"], undefined);
  });

  it("an event exactly at the limit starts its handler with the copy (the kernel accepts it)", async () => {
    const event = { hook: "cluster_change", time: "t", blob: "" };
    event.blob = "a".repeat(ENV_EVENT_MAX_BYTES - JSON.stringify(event).length);
    const report = await fireHook(
      { [`${H}/env/command`]: `printf %s "$RAPTIFORMICA_EVENT" > "${dir}/limit.env"` },
      "default",
      event,
      opts,
    );
    assert.equal(report.outcomes[0]?.status, "ran");
    assert.equal(readFileSync(join(dir, "limit.env"), "utf8"), JSON.stringify(event));
  });

  it("gives every handler an event of any size whole on stdin, and runs each", async () => {
    const event = bigEvent(1_000_000);
    const json = JSON.stringify(event);
    assert.ok(json.length > 900_000);
    const mapping = {
      [`${H}/a_reads/command`]: `cat > "${dir}/a.stdin"; printf %s "\${RAPTIFORMICA_EVENT-unset}" > "${dir}/a.env"`,
      [`${H}/b_ignores_stdin/command`]: `touch "${dir}/b.ran"`,
      [`${H}/c_reads/predicate`]: `cat > "${dir}/c.predicate.stdin"`,
      [`${H}/c_reads/command`]: `cat > "${dir}/c.stdin"`,
    };
    const report = await fireHook(mapping, "default", event, opts);
    assert.deepEqual(
      report.outcomes.map((o) => [o.handler, o.status]),
      [["a_reads", "ran"], ["b_ignores_stdin", "ran"], ["c_reads", "ran"]],
    );
    assert.equal(readFileSync(join(dir, "a.stdin"), "utf8"), `${json}\n`);
    assert.equal(readFileSync(join(dir, "c.predicate.stdin"), "utf8"), `${json}\n`);
    assert.equal(readFileSync(join(dir, "c.stdin"), "utf8"), `${json}\n`);
    assert.equal(readFileSync(join(dir, "a.env"), "utf8"), "unset", "the environment copy is left out");
  });

  it("is done with a handler when its shell exits, even if it left work in the background (the agent's cluster_change)", async () => {
    const mapping = {
      [`${H}/notify/command`]: "sleep 20 &",
      [`${H}/quiet/command`]: "sleep 20 >/dev/null 2>&1 &",
    };
    const since = Date.now();
    const report = await fireHook(mapping, "default", { hook: "cluster_change", time: "t" }, opts);
    const took = Date.now() - since;
    assert.deepEqual(report.outcomes.map((o) => o.status), ["ran", "ran"]);
    assert.ok(took < 5000, `took ${took} ms`);
  });

  it("warns about a handler that could not be started instead of skipping it quietly", async () => {
    warnings.length = 0;
    const report = await fireHook({ [`${H}/h/command`]: "true" }, "default", { hook: "cluster_change", time: "t" }, { ...opts, installDir: join(dir, "missing") });
    assert.equal(report.outcomes[0]?.status, "failed");
    assert.match(warnings.join(""), /handler h could not be started/);
  });
});
