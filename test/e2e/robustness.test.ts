import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sandbox, type Sandbox } from "../helpers/cli.ts";
import { commitFiles } from "../helpers/gitrepo.ts";

function writeJson(path: string, content: unknown): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
}

describe("malformed modules", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
    const modules = join(sb.cache, "modules");
    writeJson(join(modules, "good", "raptiformica.json"), {
      raptiformica_api_version: "0.1",
      server: { goodtype: { prov: { bootstrap: "true" } } },
    });
    writeJson(join(modules, "wrongtype", "raptiformica.json"), {
      raptiformica_api_version: "0.1",
      server: { wrongtype: { prov: { bootstrap: 42 } } },
    });
    writeJson(join(modules, "badjson", "raptiformica.json"), '{ "raptiformica_api_version": "0.1", "server": { ');
    writeJson(join(modules, "badhook", "raptiformica.json"), {
      raptiformica_api_version: "0.1",
      platform: { default: { hooks: { cluster_change: { h: { run: "echo typo for command" } } } } },
    });
    writeJson(join(modules, "badversion", "raptiformica.json"), { raptiformica_api_version: "9.9", server: { v: { p: { bootstrap: "true" } } } });
  });
  after(() => sb.cleanup());

  it("each problem names the file and the key; valid modules still load", async () => {
    const r = await sb.run(["config", "types", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const modules = join(sb.cache, "modules");
    assert.match(r.stderr, new RegExp(`${join(modules, "wrongtype", "raptiformica.json")}, key server\\.wrongtype\\.prov\\.bootstrap: expected bootstrap \\(a shell command\\) as a string`));
    assert.match(r.stderr, new RegExp(`${join(modules, "badjson", "raptiformica.json")}: is not valid JSON`));
    assert.match(r.stderr, /badhook\/raptiformica\.json, key platform\.default\.hooks\.cluster_change\.h\.run: unknown key/);
    assert.match(r.stderr, /badversion\/raptiformica\.json, key raptiformica_api_version: unsupported raptiformica_api_version/);
    const types = JSON.parse(r.stdout);
    const servers = types.server.map((s: { name: string }) => s.name);
    assert.ok(servers.includes("goodtype"), "the valid module loaded");
    assert.ok(!servers.includes("wrongtype") && !servers.includes("v"), "the broken modules did not");
  });

  it("--strict turns module problems into a failure", async () => {
    const r = await sb.run(["--strict", "config", "types"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--strict: stopping/);
  });

  it("install refuses a malformed module and changes nothing", async () => {
    const clean = sandbox();
    try {
      await clean.run(["config", "set", "test/marker", "kept"]);
      const before = readFileSync(join(clean.cache, "mutable_config.json"), "utf8");
      const repo = join(clean.home, "broken-module");
      commitFiles(repo, { "raptiformica.json": { raptiformica_api_version: "0.1", compute: { box: { headless: { start_instance: ["not", "a", "string"] } } } } });
      const r = await clean.run(["install", repo]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Module "broken-module" was not installed because it is malformed/);
      assert.match(r.stderr, /key compute\.box\.headless\.start_instance: expected start_instance \(a shell command\) as a string/);
      assert.ok(!existsSync(join(clean.cache, "modules", "broken-module")));
      assert.equal(readFileSync(join(clean.cache, "mutable_config.json"), "utf8"), before);

      const empty = join(clean.home, "empty-module");
      commitFiles(empty, { "README.md": "nothing here" });
      const e = await clean.run(["install", empty]);
      assert.equal(e.code, 1);
      assert.match(e.stderr, /has no module file/);
    } finally {
      clean.cleanup();
    }
  });
});

describe("the mutable config", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
  });
  after(() => sb.cleanup());

  it("is created 0600 on first write, seeded from the modules", async () => {
    const r = await sb.run(["config", "set", "meshnet/example/value", "42"]);
    assert.equal(r.code, 0, r.stderr);
    const path = join(sb.cache, "mutable_config.json");
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const mapping = JSON.parse(readFileSync(path, "utf8"));
    assert.equal(mapping["raptiformica/meshnet/example/value"], "42");
    assert.equal(mapping["raptiformica/raptiformica_api_version"], "0.1");
    assert.ok(mapping["raptiformica/server/headless/raptiformica/bootstrap"]);
    const g = await sb.run(["config", "get", "raptiformica/meshnet/example/value"]);
    assert.equal(g.stdout, "42");
  });

  it("config show/get/delete behave and explain mistakes", async () => {
    let r = await sb.run(["config", "show", "meshnet/example", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { "raptiformica/meshnet/example/value": "42" });
    // A key that is not set: its own exit code (66, README "Exit codes"), for get and delete alike.
    r = await sb.run(["config", "get", "meshnet/missing"]);
    assert.equal(r.code, 66, r.stderr);
    assert.match(r.stderr, /Config key raptiformica\/meshnet\/missing is not set/);
    r = await sb.run(["config", "delete", "meshnet/missing"]);
    assert.equal(r.code, 66, r.stderr);
    assert.match(r.stderr, /Config key raptiformica\/meshnet\/missing is not set; nothing was deleted/);
    r = await sb.run(["config", "delete", "meshnet/example"]);
    assert.equal(r.code, 66, r.stderr);
    assert.match(r.stderr, /add --recursive/);
    r = await sb.run(["config", "set", "meshnet/example/value/child", "x"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /raptiformica\/meshnet\/example\/value already holds a value/);
    r = await sb.run(["config", "delete", "meshnet/example", "--recursive"]);
    assert.equal(r.code, 0, r.stderr);
    r = await sb.run(["config", "get", "meshnet/example/value"]);
    assert.equal(r.code, 66, r.stderr);
  });

  it("refuses a change that would leave an invalid mapping, and writes nothing", async () => {
    const path = join(sb.cache, "mutable_config.json");
    const before = readFileSync(path, "utf8");
    const r = await sb.run(["config", "delete", "server", "--recursive"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Refusing to write the mutable config .*no raptiformica\/server\/ keys.*Nothing was written/);
    assert.equal(readFileSync(path, "utf8"), before);
  });

  it("a corrupt file gives a clear error and is never replaced", async () => {
    const path = join(sb.cache, "mutable_config.json");
    const corrupt = '{ "raptiformica/server/headless/raptiformica/bootstrap": "true", ';
    writeFileSync(path, corrupt);
    for (const args of [["config", "show"], ["config", "set", "a/b", "c"], ["install", "--remove", "x"], ["hook", "after_mesh"]]) {
      const r = await sb.run(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      if (args[1] !== "--remove") {
        assert.match(r.stderr, new RegExp(`The mutable config ${path} is not valid JSON.*will not overwrite it.*mv ${path}`));
      }
      assert.equal(readFileSync(path, "utf8"), corrupt, `${args.join(" ")} left the file alone`);
    }
    writeFileSync(path, JSON.stringify({ "raptiformica/x": 1 }));
    const r = await sb.run(["config", "show"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not a valid config mapping: key .* is invalid|the value of raptiformica\/x is not a string/);
  });
});

describe("concurrent writers", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
  });
  after(() => sb.cleanup());

  it("many processes running `config set` at once lose no write", async () => {
    const N = 24;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => sb.run(["config", "set", `test/concurrent/key${i}`, `value${i}`])),
    );
    results.forEach((r, i) => assert.equal(r.code, 0, `writer ${i}: ${r.stderr}`));
    const mapping = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8"));
    for (let i = 0; i < N; i++) assert.equal(mapping[`raptiformica/test/concurrent/key${i}`], `value${i}`);
    assert.ok(!existsSync(join(sb.cache, "mutable_config.json.lock")), "lock released");
  });

  it("the first commands run at once on a new cache dir all claim it (none takes the other's marker for foreign state)", async () => {
    // CI once refused writer 9 here: it found the dir made, no marker yet, then listed the
    // marker another writer had just put there and took it for someone else's file.
    for (let round = 0; round < 4; round++) {
      const fresh = sandbox();
      try {
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => fresh.run(["config", "set", `test/first/key${i}`, `v${i}`])),
        );
        results.forEach((r, i) => assert.equal(r.code, 0, `round ${round}, writer ${i}: ${r.stderr}`));
        assert.ok(existsSync(join(fresh.cache, ".raptiformica-cache")), "the dir is marked");
      } finally {
        fresh.cleanup();
      }
    }
  });
});
