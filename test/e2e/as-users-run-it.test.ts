import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execa } from "execa";
import { CACHE_MARKER } from "../../src/config/paths.ts";
import { openClient } from "../../src/consensus/client.ts";
import { seedKvIfEmpty } from "../../src/consensus/kv-config.ts";
import { ensureNodeCertificate } from "../../src/consensus/pki.ts";
import { createCa } from "../../src/consensus/tls.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { waitFor } from "../lab/index.ts";
import { BIN, ROOT, sandbox, type CliResult, type Sandbox } from "../helpers/cli.ts";

/**
 * The built CLI (dist/, through bin/raptiformica) with its output going to pipes, as users and
 * scripts run it: error handling and exit codes of the bundle, output that must arrive whole,
 * hook events and handlers, and terminal controls in data.
 */

const hasEtcd = spawnSync("sh", ["-c", "command -v etcd"], { stdio: "ignore" }).status === 0;
const hasUnshare = process.getuid?.() === 0 && spawnSync("unshare", ["-n", "true"], { stdio: "ignore" }).status === 0;
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function readMapping(sb: Sandbox): Record<string, string> {
  return JSON.parse(readFileSync(join(sb.cache, "mutable_config.json"), "utf8")) as Record<string, string>;
}

function writeMapping(sb: Sandbox, m: Record<string, string>): void {
  writeFileSync(join(sb.cache, "mutable_config.json"), JSON.stringify(m, null, 2), { mode: 0o600 });
}

/** Makes the sandbox a member as far as the CLI can tell: a node certificate from a cluster CA. */
async function makeMember(sb: Sandbox): Promise<ReturnType<typeof nodePaths>> {
  const node = nodePaths(join(sb.cache, "node"));
  await ensureNodeCertificate(node, await createCa(), "n1", "200::1");
  // Made by hand here, so it carries the mark raptiformica gives a cache dir it made.
  writeFileSync(join(sb.cache, CACHE_MARKER), "", { mode: 0o600 });
  return node;
}

/**
 * Runs the built CLI as `raptiformica ARGS | cat` with bash's pipefail: its stdout is a real
 * pipe (64 KiB of buffer; execa's own are socket pairs, which hold more). With `cutOff`, in a
 * network namespace of its own: a member cut off from everything.
 */
async function runPiped(sb: Sandbox, args: string[], opts: { cutOff?: boolean } = {}): Promise<CliResult> {
  const argv = opts.cutOff ? ["unshare", "-n", BIN, ...args] : [BIN, ...args];
  const r = await execa("bash", ["-c", 'set -o pipefail; "$@" | cat', "bash", ...argv], {
    env: { PATH: process.env["PATH"], HOME: sb.home, LANG: "C.UTF-8" },
    extendEnv: false,
    cwd: sb.home,
    reject: false,
    timeout: 60_000,
    stripFinalNewline: false,
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("the built CLI's error handler", () => {
  it("reports an unexpected error as internal, exit 70, with its stack", async () => {
    const sb = sandbox();
    try {
      // A node certificate that is not PEM: opening the etcd client throws from the TLS layer,
      // an error no code path expects (it used to crash the error handler itself: TypeError, exit 1).
      const tls = nodePaths(join(sb.cache, "node")).tlsDir;
      mkdirSync(tls, { recursive: true });
      for (const f of ["ca.crt", "node.crt", "node.key"]) writeFileSync(join(tls, f), "not a certificate\n");
      writeFileSync(join(sb.cache, CACHE_MARKER), "", { mode: 0o600 });
      const r = await sb.run(["config", "show"]);
      assert.equal(r.code, 70, r.stderr);
      assert.match(r.stderr, /^raptiformica: internal error \(this is a bug, please report it\):\n/);
      assert.match(r.stderr, /PEM/);
      assert.match(r.stderr, /\n {4}at openClient \(/, "the stack is printed");
      assert.doesNotMatch(r.stderr, /TypeError/);
    } finally {
      sb.cleanup();
    }
  });

  describe("the cluster dropping a write", { skip: hasEtcd ? undefined : "needs etcd" }, () => {
    let sb: Sandbox;
    let etcd: ChildProcess | undefined;
    let relay: Server | undefined;
    const sockets = new Set<Socket>();
    let cut = false;
    let etcdUrl = "";
    let node: ReturnType<typeof nodePaths>;

    before(async () => {
      sb = sandbox();
      const [etcdPort, peerPort, relayPort] = [await freePort(), await freePort(), await freePort()];
      // Still an operator machine here: this goes to the local config, which the member uses.
      const set = await sb.run(["config", "set", "meshnet/etcd/client_port", String(relayPort)]);
      assert.equal(set.code, 0, set.stderr);
      const mapping = readMapping(sb);
      node = await makeMember(sb);
      etcdUrl = `https://127.0.0.1:${etcdPort}`;
      const peer = `http://127.0.0.1:${peerPort}`;
      etcd = spawn(
        "etcd",
        [
          "--name", "n1", "--data-dir", join(sb.home, "etcd-data"),
          "--listen-client-urls", etcdUrl, "--advertise-client-urls", etcdUrl,
          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `n1=${peer}`,
          "--client-cert-auth", "--trusted-ca-file", node.caCert, "--cert-file", node.nodeCert, "--key-file", node.nodeKey,
        ],
        { stdio: "ignore" },
      );
      const client = openClient([etcdUrl], node);
      try {
        await waitFor("etcd to take the cluster config", async () => (await seedKvIfEmpty(client, mapping), true), { timeoutMs: 20_000, intervalMs: 200 });
      } finally {
        client.close();
      }
      // Between the CLI and etcd: passes everything until the client has sent 32 KiB (the big
      // write below; reads and the TLS handshake are a few KiB), then drops the connection and
      // refuses new ones, as a member that dies or is cut off mid-write does.
      relay = createServer((down) => {
        if (cut) return down.destroy();
        const up = connect(etcdPort, "127.0.0.1");
        sockets.add(down).add(up);
        let sent = 0;
        down.on("data", (d: Buffer) => {
          sent += d.length;
          if (sent > 32 * 1024) {
            cut = true;
            relay?.close();
            for (const s of sockets) s.destroy();
            return;
          }
          up.write(d);
        });
        up.on("data", (d: Buffer) => down.write(d));
        for (const s of [up, down]) {
          s.on("error", () => undefined);
          s.on("close", () => {
            up.destroy();
            down.destroy();
          });
        }
      });
      await new Promise<void>((r) => relay?.listen(relayPort, "127.0.0.1", () => r()));
    });

    after(() => {
      relay?.close();
      for (const s of sockets) s.destroy();
      etcd?.kill("SIGKILL");
      sb?.cleanup();
    });

    it("exits 75 (cluster unavailable) with what to do, not as an internal error", async () => {
      const r = await sb.run(["config", "set", "app/big", "x".repeat(100_000)]);
      assert.ok(cut, "the write reached the relay and was cut");
      assert.equal(r.code, 75, r.stderr);
      assert.match(r.stderr, /^raptiformica: the cluster's etcd did not answer \(.+\)\. Run `raptiformica members`/);
      assert.match(r.stderr, /UNAVAILABLE/, "an etcd client error (not our own deadline)");
      assert.doesNotMatch(r.stderr, /internal error|TypeError/);
      // Nothing half-applied: the cut write never reached etcd.
      const client = openClient([etcdUrl], node);
      try {
        assert.equal(await client.get("raptiformica/app/big").string(), null);
      } finally {
        client.close();
      }
    });
  });
});

describe("output through a pipe", () => {
  it("config get of a 70 KB value arrives whole (exit 0)", async () => {
    const sb = sandbox();
    try {
      const set = await sb.run(["config", "set", "app/big", "x".repeat(70_000)]);
      assert.equal(set.code, 0, set.stderr);
      const r = await runPiped(sb, ["config", "get", "app/big"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${"x".repeat(70_000)}\n`, `got ${r.stdout.length} bytes`);
    } finally {
      sb.cleanup();
    }
  });

  describe("on a member of a big cluster that is cut off", { skip: hasUnshare ? undefined : "needs root and unshare" }, () => {
    let sb: Sandbox;
    const names: string[] = [];
    const EVIL = "evil\u001b[2J\u001b]0;owned\u0007";
    const COLOUR = "a\u001b[31mb\u009b2J";
    before(async () => {
      sb = sandbox();
      const set = await sb.run(["config", "set", "app/colour", COLOUR]);
      assert.equal(set.code, 0, set.stderr);
      // 300 neighbours, as a cluster of that size records them.
      const m = readMapping(sb);
      for (let i = 0; i < 300; i++) {
        const key = i.toString(16).padStart(64, "0");
        const p = `raptiformica/meshnet/neighbours/${key}/`;
        const name = i === 7 ? EVIL : `worker-${String(i).padStart(3, "0")}.rack-${i % 12}.example.org`;
        names.push(name);
        Object.assign(m, {
          [`${p}public_key`]: key,
          [`${p}mesh_address`]: `200:${(0x1000 + i).toString(16)}:5e1f::${(i + 1).toString(16)}`,
          [`${p}host`]: `198.51.${100 + (i >> 8)}.${i & 255}`,
          [`${p}ssh_port`]: "22",
          [`${p}yggdrasil_port`]: "4863",
          [`${p}name`]: name,
        });
      }
      writeMapping(sb, m);
      await makeMember(sb);
    });
    after(() => sb.cleanup());

    it("config show --json arrives whole", async () => {
      const r = await runPiped(sb, ["config", "show", "--json"], { cutOff: true });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length > 65_536, `${r.stdout.length} bytes: more than a pipe buffer`);
      const shown = JSON.parse(r.stdout) as Record<string, string>;
      assert.equal(Object.keys(shown).filter((k) => k.endsWith("/mesh_address")).length, 300);
    });

    it("members --json arrives whole", async () => {
      const r = await runPiped(sb, ["members", "--json"], { cutOff: true });
      assert.equal(r.code, 1, r.stderr); // no quorum: the cached view, statuses unknown
      assert.ok(r.stdout.length > 65_536, `${r.stdout.length} bytes: more than a pipe buffer`);
      const parsed = JSON.parse(r.stdout) as { quorum: boolean; members: { name: string }[] };
      assert.equal(parsed.quorum, false);
      assert.deepEqual(parsed.members.map((x) => x.name).sort(), [...names].sort());
    });

    it("tables and listings show names and values from the KV with control characters escaped", async () => {
      const table = await runPiped(sb, ["members"], { cutOff: true });
      assert.equal(table.code, 1, table.stderr);
      assert.doesNotMatch(table.stdout, RAW_CONTROL);
      assert.ok(table.stdout.includes(JSON.stringify(EVIL)), "the name is shown as an escaped string");
      assert.ok(table.stdout.includes("worker-000.rack-0.example.org"), "ordinary names are shown as they are");

      const show = await runPiped(sb, ["config", "show", "app"], { cutOff: true });
      assert.equal(show.code, 0, show.stderr);
      assert.doesNotMatch(show.stdout, RAW_CONTROL);
      assert.match(show.stdout, /^raptiformica\/app\/colour = "a\\u001b\[31mb\\u009b2J"$/m);

      const json = await runPiped(sb, ["config", "show", "--json", "app"], { cutOff: true });
      assert.doesNotMatch(json.stdout, RAW_CONTROL);
      assert.equal((JSON.parse(json.stdout) as Record<string, string>)["raptiformica/app/colour"], COLOUR);

      // `config get` is for scripts: the value exactly as stored.
      const get = await runPiped(sb, ["config", "get", "app/colour"], { cutOff: true });
      assert.equal(get.stdout, `${COLOUR}\n`);
    });
  });
});

describe("hook events and handlers", () => {
  let sb: Sandbox;
  before(() => {
    sb = sandbox();
  });
  after(() => sb.cleanup());

  it("an event over 128 KiB reaches every handler on stdin; the environment copy is left out", async () => {
    const hooks = "platform/default/hooks/cluster_change";
    for (const [k, v] of [
      [`${hooks}/a_record/command`, 'cat > "$RAPTIFORMICA_CACHE_DIR/event.stdin"; printf %s "${RAPTIFORMICA_EVENT-unset}" > "$RAPTIFORMICA_CACHE_DIR/event.env"'],
      [`${hooks}/b_never_reads/command`, 'touch "$RAPTIFORMICA_CACHE_DIR/b.ran"'],
    ]) {
      const r = await sb.run(["config", "set", k as string, v as string]);
      assert.equal(r.code, 0, r.stderr);
    }
    // The largest argument the kernel passes (131 072 bytes); the event wraps it in more.
    const payload = JSON.stringify({ blob: "a".repeat(131_020) });
    const r = await sb.run(["hook", "cluster_change", "--payload", payload]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /handler\(s\): \d+ ran, \d+ skipped, 0 failed/);
    const event = JSON.parse(readFileSync(join(sb.cache, "event.stdin"), "utf8")) as { hook: string; blob: string };
    assert.equal(event.hook, "cluster_change");
    assert.equal(event.blob.length, 131_020);
    assert.equal(readFileSync(join(sb.cache, "event.env"), "utf8"), "unset");
    readFileSync(join(sb.cache, "b.ran"));
  });

  it("Ctrl-C ends the handlers it started too (they run in process groups of their own)", async () => {
    const marker = join(sb.cache, "survived");
    const set = await sb.run(["config", "set", "platform/default/hooks/qa_long/slow/command", `sleep 3; echo survived > "${marker}"`]);
    assert.equal(set.code, 0, set.stderr);
    const child = spawn(BIN, ["hook", "qa_long"], { env: { PATH: process.env["PATH"], HOME: sb.home, LANG: "C.UTF-8" }, cwd: sb.home, stdio: "ignore" });
    // The handler has started once its shell is a child of ours (bounded: 50 × 100 ms).
    let started = false;
    for (let i = 0; i < 50 && !started; i++) {
      await new Promise((r) => setTimeout(r, 100));
      started = spawnSync("pgrep", ["-P", String(child.pid)], { stdio: "ignore" }).status === 0;
    }
    assert.ok(started, "the handler started");
    const exited = new Promise<number | null>((r) => child.on("exit", (code, signal) => r(code ?? (signal ? -1 : null))));
    process.kill(child.pid!, "SIGINT");
    assert.equal(await exited, 130);
    await new Promise((r) => setTimeout(r, 4000));
    assert.ok(!existsSync(marker), "the handler kept running after Ctrl-C");
  });

  describe("a handler that puts its work in the background", () => {
    let bg: Sandbox;
    before(async () => {
      bg = sandbox();
      for (const m of ["bg-hook", "loopback-compute"]) {
        const r = await bg.run(["install", join(ROOT, "test", "fixtures", m)]);
        assert.equal(r.code, 0, r.stderr);
      }
    });
    after(() => bg.cleanup());

    // The hook is `sleep 20 &`; the compute type's instance is 127.0.0.1 port 2, where nothing
    // listens, so spawn fails fast right after the hook (exit 1).
    const SPAWN = ["spawn", "--compute-type", "qafake", "--server-type", "headless"];

    it("does not hold up spawn (output captured)", async () => {
      const since = Date.now();
      const r = await bg.run(SPAWN);
      const took = Date.now() - since;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Cannot reach root@127\.0\.0\.1:2/);
      assert.ok(took < 10_000, `spawn took ${took} ms: it waited for the background job`);
    });

    it("does not hold up spawn -v (output streamed)", async () => {
      // The background job inherits the streamed output, so a pipe on it would stay open until
      // the job ends, as with any shell script: measure when the CLI itself exits.
      const log = join(bg.home, "spawn-v.log");
      const fd = openSync(log, "w");
      const since = Date.now();
      const child = spawn(BIN, ["-v", ...SPAWN], { env: { PATH: process.env["PATH"], HOME: bg.home, LANG: "C.UTF-8" }, cwd: bg.home, stdio: ["ignore", fd, fd] });
      closeSync(fd);
      const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
      const took = Date.now() - since;
      assert.equal(code, 1, readFileSync(log, "utf8"));
      assert.ok(took < 10_000, `spawn -v took ${took} ms`);
    });
  });
});
