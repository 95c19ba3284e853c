import { strict as assert } from "node:assert";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, sandbox, type Sandbox } from "../helpers/cli.ts";
import { commitFiles } from "../helpers/gitrepo.ts";

const CORE_BOOTSTRAP = "sh ./modules/server/headless/bootstrap.sh";

/** A module in the original's format: several server types, a compute type, hooks on several hooks. */
function moduleFiles(version: string) {
  return {
    "raptiformica.json": {
      raptiformica_api_version: "0.1",
      server: {
        workstation: {
          puppetfiles: { source: "https://example.invalid/puppetfiles", bootstrap: "cd provisioning && ./papply.sh manifests/workstation.pp" },
        },
        htpc: {
          puppetfiles: { source: "https://example.invalid/puppetfiles", bootstrap: "cd provisioning && ./papply.sh manifests/htpc.pp" },
          extras: { bootstrap: "./extras.sh" },
        },
        // Overrides a core value; --remove must restore it.
        headless: { raptiformica: { bootstrap: `echo overridden-${version}` } },
      },
      compute: {
        localbox: {
          workstation: {
            available: "true",
            start_instance: "echo started",
            get_hostname: "echo 127.0.0.1",
            get_port: "echo 22",
            detect_stale_instance: "true",
            clean_up_instance_command: "true",
          },
        },
      },
      platform: {
        default: {
          hooks: {
            after_mesh: {
              record_payload: {
                predicate: "true",
                command: [
                  'cat > "$RAPTIFORMICA_CACHE_DIR/after_mesh.stdin"',
                  'printf %s "$RAPTIFORMICA_EVENT" > "$RAPTIFORMICA_CACHE_DIR/after_mesh.env"',
                  'printf %s "$RAPTIFORMICA_HOOK" > "$RAPTIFORMICA_CACHE_DIR/after_mesh.hook"',
                  'pwd > "$RAPTIFORMICA_CACHE_DIR/after_mesh.cwd"',
                ].join("; "),
              },
            },
            cluster_change: {
              record_change: { command: `echo ${version} >> "$RAPTIFORMICA_CACHE_DIR/cluster_change.log"` },
              never: { predicate: "false", command: 'touch "$RAPTIFORMICA_CACHE_DIR/never-ran"' },
            },
          },
        },
      },
    },
    // Module files are found recursively, and non-module JSON is ignored.
    "hooks/extra.json": {
      raptiformica_api_version: "0.1",
      platform: { default: { hooks: { after_slave: { note: { command: 'echo slave >> "$RAPTIFORMICA_CACHE_DIR/after_slave.log"' } } } } },
    },
    "package.json": { name: "not-a-module" },
  };
}

describe("modules in the original format", () => {
  let sb: Sandbox;
  let repo: string;
  before(() => {
    sb = sandbox();
    repo = join(sb.home, "src", "puppetfiles-like");
    commitFiles(repo, moduleFiles("v1"), "v1");
  });
  after(() => sb.cleanup());

  async function types() {
    const r = await sb.run(["config", "types", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, { name: string; available: boolean; default: boolean }[]>;
  }

  it("installs from a local git repository: types appear and overrides apply", async () => {
    const r = await sb.run(["install", repo]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Installed module puppetfiles-like/);
    assert.ok(existsSync(join(sb.cache, "modules", "puppetfiles-like", "raptiformica.json")));

    const t = await types();
    assert.deepEqual(t["server"]?.map((s) => s.name), ["headless", "htpc", "workstation"]);
    const localbox = t["compute"]?.find((c) => c.name === "localbox");
    assert.ok(localbox?.available, "localbox is available (its predicate is `true`)");

    const g = await sb.run(["config", "get", "server/headless/raptiformica/bootstrap"]);
    assert.equal(g.stdout.trim(), "echo overridden-v1");
    const p = await sb.run(["config", "get", "raptiformica/server/htpc/extras/bootstrap"]);
    assert.equal(p.stdout.trim(), "./extras.sh");
  });

  it("fires its hook handlers with the payload on stdin and in the environment, in the install dir", async () => {
    const r = await sb.run(["hook", "after_mesh", "--payload", '{"node":"n1","reason":"test"}']);
    assert.equal(r.code, 0, r.stderr);
    const stdin = JSON.parse(readFileSync(join(sb.cache, "after_mesh.stdin"), "utf8"));
    assert.equal(stdin.hook, "after_mesh");
    assert.equal(stdin.node, "n1");
    assert.equal(stdin.reason, "test");
    assert.match(stdin.time, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(JSON.parse(readFileSync(join(sb.cache, "after_mesh.env"), "utf8")), stdin);
    assert.equal(readFileSync(join(sb.cache, "after_mesh.hook"), "utf8"), "after_mesh");
    assert.equal(readFileSync(join(sb.cache, "after_mesh.cwd"), "utf8").trim(), ROOT);

    const s = await sb.run(["hook", "after_slave"]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(readFileSync(join(sb.cache, "after_slave.log"), "utf8"), "slave\n");
  });

  it("skips handlers whose predicate fails", async () => {
    const r = await sb.run(["hook", "cluster_change", "-v"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(sb.cache, "cluster_change.log"), "utf8"), "v1\n");
    assert.ok(!existsSync(join(sb.cache, "never-ran")));
    assert.match(r.stderr, /handler never skipped/);
  });

  it("re-installing picks up a new version of the module", async () => {
    commitFiles(repo, moduleFiles("v2"), "v2");
    const r = await sb.run(["install", repo]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Updated module puppetfiles-like/);
    const g = await sb.run(["config", "get", "server/headless/raptiformica/bootstrap"]);
    assert.equal(g.stdout.trim(), "echo overridden-v2");
  });

  it("--remove deletes its keys and restores the core values it overrode", async () => {
    const r = await sb.run(["install", "--remove", "puppetfiles-like"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(join(sb.cache, "modules", "puppetfiles-like")));
    const g = await sb.run(["config", "get", "server/headless/raptiformica/bootstrap"]);
    assert.equal(g.stdout.trim(), CORE_BOOTSTRAP);
    const t = await types();
    assert.deepEqual(t["server"]?.map((s) => s.name), ["headless"]);
    assert.ok(!t["compute"]?.some((c) => c.name === "localbox"));
    const h = await sb.run(["config", "show", "platform/default/hooks/after_mesh"]);
    assert.equal(h.code, 1, "its hook handlers are gone");
  });

  it("--remove of a module that is not installed is an error", async () => {
    const r = await sb.run(["install", "-r", "nope"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Module "nope" is not installed/);
  });

  it("a clone failure is an error and changes nothing", async () => {
    const before = readFileSync(join(sb.cache, "mutable_config.json"), "utf8");
    const r = await sb.run(["install", "file:///nonexistent/raptiformica-module.git"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /git clone .*nonexistent.* failed/);
    assert.ok(!existsSync(join(sb.cache, "modules", "raptiformica-module")));
    assert.equal(readFileSync(join(sb.cache, "mutable_config.json"), "utf8"), before);
  });

  it("installs a plain local directory too", async () => {
    const dir = join(sb.home, "plain-module");
    commitFiles(dir, moduleFiles("plain"));
    rmSync(join(dir, ".git"), { recursive: true, force: true });
    const r = await sb.run(["install", dir]);
    assert.equal(r.code, 0, r.stderr);
    const g = await sb.run(["config", "get", "server/headless/raptiformica/bootstrap"]);
    assert.equal(g.stdout.trim(), "echo overridden-plain");
  });
});
