import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LocalConfig } from "../../src/config/local.ts";
import { cachePaths } from "../../src/config/paths.ts";
import { ensureSharedSecret, secretKey } from "../../src/config/secrets.ts";
import { MutableConfigStore, deletionMayInvalidate, mappingProblem } from "../../src/config/store.ts";
import { createLogger } from "../../src/util/log.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const base = {
  "raptiformica/server/headless/p/bootstrap": "x",
  "raptiformica/compute/docker/headless/get_port": "echo 22",
  "raptiformica/platform/default/hooks/h/n/command": "true",
};

describe("mutable config store", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-store-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("validates mappings like the original", () => {
    assert.equal(mappingProblem({}), "it is empty");
    assert.match(mappingProblem({ "raptiformica/server/a": "1" }) ?? "", /no raptiformica\/compute\/ keys/);
    assert.equal(mappingProblem(base), undefined);
    assert.match(mappingProblem({ ...base, "raptiformica/a b": "1" }) ?? "", /key "raptiformica\/a b" is invalid: it contains white space/);
    assert.equal(mappingProblem({ ...base, "raptiformica/a": 1 }), "the value of raptiformica/a is not a string");
    assert.equal(mappingProblem([]), "it is not a JSON object");
  });

  it("only a deletion in a required section can make a valid mapping invalid", () => {
    for (const key of Object.keys(base)) {
      const after: Record<string, string> = { ...base };
      delete after[key];
      if (mappingProblem(after) !== undefined) assert.ok(deletionMayInvalidate(key), key);
    }
    assert.equal(deletionMayInvalidate("raptiformica/server/headless/x"), true);
    assert.equal(deletionMayInvalidate("raptiformica/meshnet/neighbours/ab/host"), false);
    assert.equal(deletionMayInvalidate("raptiformica/servers/x"), false);
  });

  it("writes sorted, indented, 0600 JSON and skips no-op writes", async () => {
    const store = new MutableConfigStore(join(dir, "a", "mutable_config.json"));
    await store.update(() => base, (m) => ({ ...m, "raptiformica/z": "1" }));
    const text = readFileSync(store.path, "utf8");
    assert.equal(Object.keys(JSON.parse(text))[0], "raptiformica/compute/docker/headless/get_port");
    assert.match(text, /^\{\n {4}"/);
    assert.equal(statSync(store.path).mode & 0o777, 0o600);
    const mtime = statSync(store.path).mtimeMs;
    await store.update(() => base, (m) => m);
    assert.equal(statSync(store.path).mtimeMs, mtime);
  });

  it("never replaces a corrupt file", async () => {
    const path = join(dir, "corrupt.json");
    writeFileSync(path, "[]");
    const store = new MutableConfigStore(path);
    const r = store.read();
    assert.ok(!r.ok);
    await assert.rejects(store.update(() => base, (m) => m), /will not overwrite it/);
    assert.equal(readFileSync(path, "utf8"), "[]");
  });

  it("creates a shared secret once, even when asked concurrently", async () => {
    const paths = cachePaths(join(dir, "secrets"));
    const config = new LocalConfig(paths, ROOT, createLogger(false), false);
    const secrets = await Promise.all(Array.from({ length: 8 }, () => ensureSharedSecret(config, "yggdrasil")));
    assert.equal(new Set(secrets).size, 1);
    assert.match(secrets[0] ?? "", /^[0-9a-f]{64}$/);
    assert.equal(config.snapshot().mapping[secretKey("yggdrasil")], secrets[0]);
    assert.equal(statSync(paths.mutableConfig).mode & 0o777, 0o600);
  });
});
