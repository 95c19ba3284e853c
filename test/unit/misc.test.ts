import { strict as assert } from "node:assert";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveCacheDir } from "../../src/config/paths.ts";
import { hookHandlers } from "../../src/hooks/handlers.ts";
import { parseModuleSpec } from "../../src/ops/install.ts";

describe("module specs", () => {
  it("maps owner/repo to GitHub and derives the directory name", () => {
    const r = parseModuleSpec("vdloo/puppetfiles", "/nonexistent-cwd");
    assert.deepEqual(r, { ok: true, value: { kind: "git", url: "https://github.com/vdloo/puppetfiles", name: "puppetfiles" } });
  });
  it("uses other URLs verbatim and strips .git", () => {
    const r = parseModuleSpec("https://git.example.org/a/b/raptiformica-map.git", "/");
    assert.deepEqual(r, { ok: true, value: { kind: "git", url: "https://git.example.org/a/b/raptiformica-map.git", name: "raptiformica-map" } });
    const s = parseModuleSpec("git@example.org:me/mod.git", "/");
    assert.ok(s.ok && s.value.name === "mod");
  });
  it("treats explicit paths as local", () => {
    const r = parseModuleSpec("./mods/my-module/", "/home/u");
    assert.deepEqual(r, { ok: true, value: { kind: "path", path: "/home/u/mods/my-module", name: "my-module" } });
  });
  it("rejects names it cannot use", () => {
    assert.ok(!parseModuleSpec("  ").ok);
    assert.ok(!parseModuleSpec("https://example.org/..", "/").ok);
  });
});

describe("cache dir", () => {
  it("is relative to $HOME unless absolute; the flag wins over the environment", () => {
    assert.equal(resolveCacheDir(undefined, {}, "/home/u"), join("/home/u", ".raptiformica.d"));
    assert.equal(resolveCacheDir(undefined, { RAPTIFORMICA_CACHE_DIR: "t.d" }, "/home/u"), "/home/u/t.d");
    assert.equal(resolveCacheDir("/abs/c", { RAPTIFORMICA_CACHE_DIR: "t.d" }, "/home/u"), "/abs/c");
  });
});

describe("hook handlers", () => {
  it("are ordered by name; missing predicate or command means always / nothing", () => {
    const m = {
      "raptiformica/platform/default/hooks/h/b/command": "echo b",
      "raptiformica/platform/default/hooks/h/a/predicate": "test -e x",
      "raptiformica/platform/default/hooks/other/c/command": "echo c",
    };
    assert.deepEqual(hookHandlers(m, "default", "h"), [
      { name: "a", predicate: "test -e x", command: "true" },
      { name: "b", predicate: "true", command: "echo b" },
    ]);
  });
});

describe("cluster settings", () => {
  it("raft timing: etcd's defaults, passed to etcd, and a too-short election timeout named with the fix", async () => {
    const { clusterSettings } = await import("../../src/consensus/settings.ts");
    const { etcdServerArgs } = await import("../../src/consensus/etcd-args.ts");
    const { nodePaths } = await import("../../src/node/paths.ts");
    const d = clusterSettings({});
    assert.deepEqual([d.heartbeatMs, d.electionMs], [100, 1000]);
    const wan = clusterSettings({ "raptiformica/meshnet/etcd/heartbeat_ms": "300", "raptiformica/meshnet/etcd/election_ms": "3000" });
    const args = etcdServerArgs(nodePaths("/x"), {
      name: "n",
      meshAddress: "200::1",
      clientPort: 2379,
      peerPort: 2380,
      state: "new",
      initialCluster: new Map([["n", "https://[200::1]:2380"]]),
      token: "t",
      heartbeatMs: wan.heartbeatMs,
      electionMs: wan.electionMs,
    });
    assert.equal(args[args.indexOf("--heartbeat-interval") + 1], "300");
    assert.equal(args[args.indexOf("--election-timeout") + 1], "3000");
    // A member serves the local endpoint; a learner leaves it to its grpc-proxy (the mesh address only).
    assert.equal(args[args.indexOf("--listen-client-urls") + 1], "https://[200::1]:2379,https://127.0.0.1:2379");
    const learner = etcdServerArgs(nodePaths("/x"), { name: "n", meshAddress: "200::1", clientPort: 2379, peerPort: 2380, state: "existing", initialCluster: new Map(), token: "t", heartbeatMs: 100, electionMs: 1000, localClients: false });
    assert.equal(learner[learner.indexOf("--listen-client-urls") + 1], "https://[200::1]:2379");
    const { settingProblems } = await import("../../src/consensus/settings.ts");
    const [problem] = settingProblems({ "raptiformica/meshnet/etcd/heartbeat_ms": "500" });
    assert.match(problem?.message ?? "", /election_ms is 1000 but .*heartbeat_ms is 500/);
    assert.match(problem?.message ?? "", /config set raptiformica\/meshnet\/etcd\/election_ms 5000/);
  });
});
