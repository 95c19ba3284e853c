import { strict as assert } from "node:assert";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, sandbox, type Sandbox } from "../helpers/cli.ts";

// Failing inputs reported against the built CLI; each folder has a README (command, what happened, what is expected).
// The failing inputs of the cases these tests come from, copied from their reports.
const CASES = join(ROOT, "test", "fixtures", "cases");
const KEY = "116f4e064f7e9fbffaeca0c334c2cbb6bf3e2f2f83446f2520d2d84dfeb3bd55";
const NEIGHBOUR = `raptiformica/meshnet/neighbours/${KEY}`;

/** Hosts yggdrasil cannot dial, and what the refusal must say about each. */
const BAD_HOSTS: [string, RegExp][] = [
  ["a_b", /"a_b" is not a hostname or IP address: it contains "_"/],
  ["h:22", /"h:22" is not a hostname or IP address: it has a port \(22\) in it; give the host alone \(h\) and the port with --port/],
  ["[::1]:22", /"\[::1\]:22" is not a hostname or IP address: it has a port \(22\) in it; give the host alone \(\[::1\]\) and the port with --port/],
  ["a;b", /"a;b" is not a hostname or IP address: it contains ";"/],
  ["$(touch x)", /"\$\(touch x\)" is not a hostname or IP address: it contains/],
];

describe("hosts are checked where they enter", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
  });
  after(() => sb.cleanup());

  it("config set refuses a neighbour field no code can use, also before the entry is complete, and a key that is no neighbour's", async () => {
    const own = sandbox();
    const id = "ef".repeat(32);
    for (const [k, v] of [
      [`meshnet/neighbours/${id}/host`, "a_b"],
      [`meshnet/neighbours/${id}/ssh_port`, "0"],
      [`meshnet/neighbours/${"EF".repeat(32)}/host`, "10.0.0.1"],
    ] as const) {
      const r = await own.run(["config", "set", k, v]);
      assert.equal(r.code, 1, `${k}=${v}: ${r.stderr}`);
      assert.match(r.stderr, /refused, nothing was changed/);
    }
    const ok = await own.run(["config", "set", `meshnet/neighbours/${id}/host`, "[2001:db8::1]"]);
    assert.equal(ok.code, 0, ok.stderr);
    own.cleanup();
  });

  it("advertise refuses a host yggdrasil cannot use, naming it and what to do, and writes nothing", async () => {
    for (const [host, re] of BAD_HOSTS) {
      const r = await sb.run(["advertise", host]);
      assert.equal(r.code, 1, `${host}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.ok(!existsSync(join(sb.cache, "last_advertised")), `${host} was recorded`);
    }
  });

  it("advertise takes an IPv6 host bare or in brackets and records one form", async () => {
    for (const host of ["[2001:DB8::7]", "2001:db8::7"]) {
      const r = await sb.run(["advertise", host, "--port", "2222"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(sb.cache, "last_advertised"), "utf8")), { host: "2001:db8::7", port: 2222 });
    }
  });

  it("inject refuses a host yggdrasil cannot use and leaves the config as it was", async () => {
    for (const [host, re] of BAD_HOSTS) {
      const r = await sb.run(["inject", host, "--key", KEY]);
      assert.equal(r.code, 1, `${host}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.ok(!existsSync(join(sb.cache, "mutable_config.json")), `${host} was written`);
    }
  });

  it("inject takes [v6] and shows it as [v6]:port; the config holds it bare", async () => {
    const r = await sb.run(["inject", "[2001:DB8::5]", "--port", "2222", "--key", KEY]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /registered \[2001:db8::5\]:2222 \(/);
    const mapping = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
    assert.equal(mapping[`${NEIGHBOUR}/host`], "2001:db8::5");
    assert.equal(mapping[`${NEIGHBOUR}/ssh_port`], "2222");
  });

  it("slave refuses a bad --advertise-host before it connects anywhere", async () => {
    const r = await sb.run(["slave", "127.0.0.1", "--advertise-host", "h:22"], { timeout: 15_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /"h:22" is not a hostname or IP address: it has a port \(22\) in it; give the host alone \(h\) and the port with --advertise-port/);
    const bad = await sb.run(["slave", "a_b"], { timeout: 15_000 });
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /"a_b" is not a hostname or IP address/);
  });

  it("deploy refuses an inventory entry whose dst yggdrasil cannot use, naming the entry", async () => {
    const inventory = join(sb.home, "bad-dst.json");
    writeFileSync(inventory, JSON.stringify([{ dst: "127.0.0.5" }, { dst: "node_2.example.org" }]));
    const r = await sb.run(["deploy", inventory], { timeout: 15_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /entry 2: "dst" "node_2\.example\.org" is not a hostname or IP address: it contains "_"/);
  });
});

describe("case inventory-entry-numbers: entries are numbered by their position in the file", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
  });
  after(() => sb.cleanup());

  it("counts the entry without dst", async () => {
    const via = await sb.run(["deploy", join(CASES, "inventory-entry-numbers", "inventory-via.json")], { timeout: 15_000 });
    assert.equal(via.code, 1, via.stderr);
    assert.match(via.stderr, /entry 2 \(dst 127\.0\.0\.5\) has "via": 127\.0\.0\.9, which is no entry's dst/);
    const dup = await sb.run(["deploy", join(CASES, "inventory-entry-numbers", "inventory-dup.json")], { timeout: 15_000 });
    assert.equal(dup.code, 1, dup.stderr);
    assert.match(dup.stderr, /entry 3 repeats dst 127\.0\.0\.5 \(also entry 2\)/);
  });
});

describe("case install-refusal-names-installed-copy: a refused install names the refused source", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
    cpSync(join(CASES, "install-refusal-names-installed-copy", "good"), join(sb.home, "good"), { recursive: true });
    cpSync(join(CASES, "install-refusal-names-installed-copy", "bad"), join(sb.home, "bad"), { recursive: true });
  });
  after(() => sb.cleanup());

  it("lists every problem of the refused file, keeps the installed copy and advises no removal", async () => {
    const good = await sb.run(["install", "./good/raptiformica-map"]);
    assert.equal(good.code, 0, good.stderr);
    const installed = join(sb.cache, "modules", "raptiformica-map", "raptiformica.json");
    const installedText = readFileSync(installed, "utf8");
    const configBefore = readFileSync(join(sb.cache, "mutable_config.json"), "utf8");

    const r = await sb.run(["install", "./bad/raptiformica-map"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /module file \.\/bad\/raptiformica-map\/raptiformica\.json has 4 problems:/);
    for (const key of ["server.headless.name", "server.headless.source", "server.headless.bootstrap", "platform.hooks.cluster_change"]) {
      assert.match(r.stderr, new RegExp(`key ${key.replace(/\./g, "\\.")}: `), key);
    }
    assert.match(r.stderr, /The installed version of raptiformica-map \(.*\) stays as it was/);
    assert.doesNotMatch(r.stderr, new RegExp(installed.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")), "names the installed copy");
    assert.doesNotMatch(r.stderr, /install --remove|and \d+ more/);
    // Nothing changed.
    assert.equal(readFileSync(installed, "utf8"), installedText);
    assert.equal(readFileSync(join(sb.cache, "mutable_config.json"), "utf8"), configBefore);
  });
});

describe("case malformed-module-silent: every command that loads modules reports a malformed one once", () => {
  let sb: Sandbox;
  let file: string;
  before(() => {
    sb = sandbox();
    file = join(sb.cache, "modules", "broken", "raptiformica.json");
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, '{"raptiformica_api_version": "0.1", "server": {"x": ');
  });
  after(() => sb.cleanup());

  const warnings = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("warning: module file ")).length;

  it("warns once per command, naming the file, with or without a mutable config", async () => {
    const first = await sb.run(["config", "show", "--json"]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(warnings(first.stderr), 1, first.stderr);
    assert.ok(first.stderr.includes(`module file ${file}: is not valid JSON`), first.stderr);
    assert.match(first.stderr, /install --remove broken/);

    const set = await sb.run(["config", "set", "test/marker", "kept"]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(warnings(set.stderr), 1, set.stderr);
    assert.ok(existsSync(join(sb.cache, "mutable_config.json")));

    // With a mutable config, these read no module to answer: they still say the module is broken.
    for (const argv of [["config", "show", "--json"], ["config", "get", "test/marker"], ["config", "types"], ["members"]]) {
      const r = await sb.run(argv, { timeout: 30_000 });
      assert.equal(warnings(r.stderr), 1, `${argv.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(file), `${argv.join(" ")} names the file`);
    }
  });

  it("--strict makes it an error everywhere", async () => {
    const good = join(sb.home, "good-module");
    mkdirSync(good);
    writeFileSync(join(good, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", server: { goodtype: { p: { bootstrap: "true" } } } }));
    for (const argv of [["config", "show", "--json"], ["config", "get", "test/marker"], ["config", "set", "test/x", "y"], ["config", "types"], ["members"], ["install", good]]) {
      const r = await sb.run(["--strict", ...argv], { timeout: 30_000 });
      assert.equal(r.code, 1, `${argv.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(file), `${argv.join(" ")} names the file`);
      assert.match(r.stderr, /--strict: stopping/, argv.join(" "));
    }
    const after = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
    assert.equal(after["test/x"], undefined, "--strict config set wrote anyway");
    assert.ok(!existsSync(join(sb.cache, "modules", "good-module")), "--strict install installed anyway");
    // Removing (or reinstalling) the broken module is how it is repaired, --strict or not.
    const removed = await sb.run(["--strict", "install", "--remove", "broken"]);
    assert.equal(removed.code, 0, removed.stderr);
    const clean = await sb.run(["--strict", "config", "types"]);
    assert.equal(clean.code, 0, clean.stderr);
  });
});

describe("--strict never stops the repair of a broken module", () => {
  let sb: Sandbox;
  after(() => sb?.cleanup());

  const BROKEN: [string, string][] = [
    ["truncated JSON", '{"raptiformica_api_version": "0.1", "server": {"x": '],
    ["a schema error", JSON.stringify({ raptiformica_api_version: "0.1", server: { headless: { x: 1 } } })],
  ];

  for (const [what, text] of BROKEN) {
    it(`install --remove and install of a fixed version work under --strict with ${what}, before any mutable config exists`, async () => {
      sb?.cleanup();
      sb = sandbox();
      const file = join(sb.cache, "modules", "broken", "raptiformica.json");
      const write = () => {
        mkdirSync(join(file, ".."), { recursive: true });
        writeFileSync(file, text);
      };
      write();
      const removed = await sb.run(["--strict", "install", "--remove", "broken"]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.ok(!existsSync(join(sb.cache, "modules", "broken")));
      const types = await sb.run(["--strict", "config", "types"]);
      assert.equal(types.code, 0, types.stderr);

      // Replacing it with a fixed version is the other way out.
      rmSync(join(sb.cache, "mutable_config.json"), { force: true });
      write();
      const fixed = join(sb.home, "broken");
      mkdirSync(fixed);
      writeFileSync(join(fixed, "raptiformica.json"), JSON.stringify({ raptiformica_api_version: "0.1", server: { fixedtype: { p: { bootstrap: "true" } } } }));
      const installed = await sb.run(["--strict", "install", fixed]);
      assert.equal(installed.code, 0, installed.stderr);
      const config = JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
      assert.equal(config["raptiformica/server/fixedtype/p/bootstrap"], "true");
    });
  }
});
