import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { validateModule } from "../../src/config/schema.ts";

describe("module schema", () => {
  it("accepts the original's stock files and free-form override sections", () => {
    const r = validateModule({
      raptiformica_api_version: "0.1",
      server: { headless: { raptiformica: { bootstrap: "cd $HOME; ./deploy.py" } } },
      compute: { docker: { headless: { available: "docker -v", source: "https://x", start_instance: "a", get_hostname: "b", get_port: "echo 22" } } },
      platform: { default: { hooks: { cluster_change: { rejoin: { predicate: "true", command: "x" } } } } },
      meshnet: { etcd: { max_voters: 5 } },
    });
    assert.ok(r.ok);
  });

  it("names the offending key", () => {
    const cases: [unknown, string, RegExp][] = [
      [{ raptiformica_api_version: "0.1", server: "headless" }, "server", /Expected object/],
      [{ raptiformica_api_version: "0.1", compute: { d: { h: { get_port: 22 } } } }, "compute.d.h.get_port", /get_port \(a shell command\) as a string/],
      [{ raptiformica_api_version: "0.1", compute: { d: { h: { start: "x" } } } }, "compute.d.h.start", /unknown key/],
      [{ raptiformica_api_version: "0.1", platform: { default: { hooks: { x: "y" } } } }, "platform.default.hooks.x", /Expected object/],
      [{ raptiformica_api_version: "0.1", server: { "a/b": { p: {} } } }, "server.a/b", /no "\/"/],
      [{ raptiformica_api_version: "0.1", extra: [1, 2] }, "extra", /arrays and null cannot be stored|Expected object/],
      [{ raptiformica_api_version: "0.1", meshnet: { a: { b: null } } }, "meshnet.a.b", /arrays and null cannot be stored/],
      [{ raptiformica_api_version: "0.2" }, "raptiformica_api_version", /unsupported/],
    ];
    for (const [doc, key, message] of cases) {
      const r = validateModule(doc);
      assert.ok(!r.ok, `rejects ${JSON.stringify(doc)}`);
      assert.equal(r.problems[0]?.key, key);
      assert.match(r.problems[0]?.message ?? "", message);
    }
  });

  it("reports every problem of a file, saying what belongs where the fixed sections were misused", () => {
    // An older module shape: provisioner keys flat under the server type, hooks with no platform type.
    const r = validateModule({
      raptiformica_api_version: "0.1",
      server: { headless: { name: "m", source: "https://x", bootstrap: "./deploy.sh" } },
      platform: { hooks: { cluster_change: { update: { predicate: "false", command: "true" } } } },
    });
    assert.ok(!r.ok);
    assert.deepEqual(
      r.problems.map((p) => p.key),
      ["server.headless.name", "server.headless.source", "server.headless.bootstrap", "platform.hooks.cluster_change"],
    );
    assert.match(r.problems[0]?.message ?? "", /here belongs a provisioner: an object with source, bootstrap and\/or available/);
    assert.match(r.problems[3]?.message ?? "", /unknown key \(a typo\?\); here belongs a platform type: an object with available and\/or hooks/);
  });
});

