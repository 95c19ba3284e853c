import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Supervisor, type ServiceSpec } from "../../src/node/supervisor.ts";

/*
 * The supervisor with real, short-lived children (`sleep`, a node that ignores SIGTERM) in a
 * temp dir. Every process it starts is one of ours; at the end the test stops them by pid,
 * after checking that the pid is still the process we started (same start time), never by name.
 */

const root = mkdtempSync(join(tmpdir(), "rf-supervisor-"));
/** pid → its start time (clock ticks since boot), for every process this test started. */
const ours = new Map<number, string>();

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return undefined;
  }
}

/** State (field 3) and start time (field 22) from /proc/<pid>/stat. */
function stat(pid: number): { state: string; ticks: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { state: f[0] ?? "", ticks: f[19] ?? "" };
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a child that exited but was not reaped yet). */
function running(pid: number): boolean {
  const st = stat(pid);
  return st !== undefined && st.state !== "Z" && st.state !== "X";
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function track(pid: number | undefined): number {
  assert.ok(pid !== undefined, "a pid");
  const st = stat(pid);
  if (st) ours.set(pid, st.ticks);
  return pid;
}

/**
 * Tracks the processes the supervisor's pidfiles in a run dir name (also when a check failed
 * before `track`), if the pid is still the process the supervisor started (same boot and start).
 */
function trackRunDir(runDir: string): void {
  const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  for (const f of readdirSync(runDir)) {
    try {
      const { pid, processStart } = JSON.parse(readFileSync(join(runDir, f), "utf8")) as { pid?: unknown; processStart?: unknown };
      if (typeof pid !== "number" || ours.has(pid)) continue;
      if (processStart === `${bootId}/${stat(pid)?.ticks}`) track(pid);
    } catch {
      /* a pidfile a test wrote on purpose */
    }
  }
}

const runDirs: string[] = [];

after(() => {
  for (const d of runDirs) trackRunDir(d);
  for (const [pid, ticks] of ours) {
    if (stat(pid)?.ticks === ticks) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function fresh(): { sup: Supervisor; runDir: string; logDir: string } {
  const dir = join(root, String(n++));
  const runDir = join(dir, "run");
  const logDir = join(dir, "log");
  runDirs.push(runDir);
  return { sup: new Supervisor(runDir, logDir), runDir, logDir };
}

const sleeper = (hash = "h1", seconds = "30"): ServiceSpec => ({ name: "svc", command: "sleep", args: [seconds], configHash: hash, meta: { started: "with " + hash } });

describe("supervisor", () => {
  it("starts a service detached with a private pidfile, then leaves it running", async () => {
    const { sup, runDir } = fresh();
    assert.equal(sup.isRunning("svc"), false);
    assert.equal(await sup.ensure(sleeper()), "started");
    const pid = track(sup.pid("svc"));
    assert.equal(cmdline(pid), "sleep 30");
    const rec = JSON.parse(readFileSync(join(runDir, "svc.pid"), "utf8")) as Record<string, unknown>;
    assert.equal(rec["pid"], pid);
    assert.equal(rec["hash"], "h1");
    assert.equal(rec["command"], "sleep");
    assert.ok(Math.abs((rec["startedAt"] as number) - Date.now()) < 5000);
    assert.equal(statSync(join(runDir, "svc.pid")).mode & 0o777, 0o600);
    assert.equal(statSync(runDir).mode & 0o777, 0o700);
    assert.deepEqual(sup.metaOf("svc"), { started: "with h1" });
    assert.equal(sup.hashOf("svc"), "h1");
    // Detached: its own session, so a signal to the agent's process group does not reach it.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    assert.equal(Number(stat[3]), pid, "its own session (sid = pid)");
    assert.equal(await sup.ensure(sleeper()), "running");
    assert.equal(sup.pid("svc"), pid);
  });

  it("restarts a service that exited, and one whose config changed or that is asked to", async () => {
    const { sup } = fresh();
    await sup.ensure(sleeper());
    const first = track(sup.pid("svc"));
    process.kill(first, "SIGKILL");
    await until("the killed child to be gone", () => !running(first));
    assert.equal(sup.isRunning("svc"), false);
    assert.equal(await sup.ensure(sleeper()), "started");
    const second = track(sup.pid("svc"));
    assert.notEqual(second, first);

    assert.equal(await sup.ensure(sleeper("h2")), "restarted");
    const third = track(sup.pid("svc"));
    assert.notEqual(third, second);
    assert.equal(running(second), false, "the old instance was stopped");
    assert.deepEqual(sup.metaOf("svc"), { started: "with h2" });

    assert.equal(await sup.ensure(sleeper("h2"), { restart: true }), "restarted");
    const fourth = track(sup.pid("svc"));
    assert.notEqual(fourth, third);
    assert.equal(running(third), false);
  });

  it("a restarted agent adopts the child a previous agent process started, and can stop it", async () => {
    const { sup, runDir, logDir } = fresh();
    // The previous agent: another node process that starts the service and exits.
    const src = fileURLToPath(new URL("../../src/node/supervisor.ts", import.meta.url));
    const script = `import { Supervisor } from ${JSON.stringify(src)};
      const s = new Supervisor(${JSON.stringify(runDir)}, ${JSON.stringify(logDir)});
      console.log(await s.ensure({ name: "svc", command: "sleep", args: ["30"], configHash: "h1" }), s.pid("svc"));`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const [outcome, pidText] = r.stdout.trim().split(" ");
    assert.equal(outcome, "started");
    const pid = track(Number(pidText));
    assert.ok(running(pid), "the child outlived the agent that started it");
    assert.equal(await sup.ensure(sleeper()), "running");
    assert.equal(sup.pid("svc"), pid);
    await sup.stop("svc");
    assert.equal(running(pid), false);
    assert.equal(existsSync(join(runDir, "svc.pid")), false);
  });

  it("does not adopt, nor signal, a reused pid, even one running the same command", async () => {
    const { sup, runDir } = fresh();
    await sup.ensure(sleeper());
    const old = track(sup.pid("svc"));
    const rec = JSON.parse(readFileSync(join(runDir, "svc.pid"), "utf8")) as Record<string, unknown>;
    process.kill(old, "SIGKILL");
    await until("the service to be gone", () => !running(old));
    // Its pid now belongs to another sleep (after a reboot or a container restart, pids are
    // handed out again from the bottom): same command line, another process, started later
    // (here: a few clock ticks later).
    await new Promise((r) => setTimeout(r, 50));
    const decoy: ChildProcess = spawn("sleep", ["31"], { stdio: "ignore" });
    const decoyPid = track(decoy.pid);
    await until("the decoy to run", () => running(decoyPid));
    writeFileSync(join(runDir, "svc.pid"), JSON.stringify({ ...rec, pid: decoyPid }));
    assert.equal(sup.isRunning("svc"), false);
    await sup.stop("svc", 200);
    assert.ok(running(decoyPid), "stop did not signal the decoy");
    writeFileSync(join(runDir, "svc.pid"), JSON.stringify({ ...rec, pid: decoyPid }));
    assert.equal(await sup.ensure(sleeper()), "started");
    track(sup.pid("svc"));
    assert.ok(running(decoyPid), "ensure did not signal the decoy");
    // The same process, seen from another boot (a pidfile kept across a reboot), is not it either.
    const now = JSON.parse(readFileSync(join(runDir, "svc.pid"), "utf8")) as { processStart: string };
    const [, ticks] = now.processStart.split("/");
    writeFileSync(join(runDir, "svc.pid"), JSON.stringify({ ...now, processStart: `00000000-0000-0000-0000-000000000000/${ticks}` }));
    assert.equal(sup.isRunning("svc"), false);
    decoy.kill("SIGKILL");
  });

  it("adopts a service whose process execs another program, instead of starting one more each time", async () => {
    const { sup } = fresh();
    const wrapped: ServiceSpec = { name: "wrapped", command: "sh", args: ["-c", "exec sleep 30"], configHash: "w" };
    assert.equal(await sup.ensure(wrapped), "started");
    const pid = track(sup.pid("wrapped"));
    await until("the wrapper to exec", () => cmdline(pid) === "sleep 30");
    assert.equal(await sup.ensure(wrapped), "running");
    assert.equal(sup.pid("wrapped"), pid);
    await sup.stop("wrapped");
    assert.equal(running(pid), false);
  });

  it("a pidfile from before start times were kept: adopted only while the pid runs the command", async () => {
    const { sup, runDir } = fresh();
    // A process of ours that is not the service, under the service's pidfile.
    const decoy: ChildProcess = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    const decoyPid = track(decoy.pid);
    await until("the decoy to run", () => running(decoyPid));
    writeFileSync(join(runDir, "svc.pid"), JSON.stringify({ pid: decoyPid, hash: "h1", command: "sleep", startedAt: 1 }));
    assert.equal(sup.isRunning("svc"), false);
    assert.equal(sup.pid("svc"), undefined);
    await sup.stop("svc", 200);
    assert.ok(running(decoyPid), "stop did not signal the decoy");
    writeFileSync(join(runDir, "svc.pid"), JSON.stringify({ pid: decoyPid, hash: "h1", command: "sleep", startedAt: 1 }));
    assert.equal(await sup.ensure(sleeper()), "started");
    const pid = track(sup.pid("svc"));
    assert.notEqual(pid, decoyPid);
    assert.ok(running(decoyPid), "ensure did not signal the decoy");
    decoy.kill("SIGKILL");
  });

  it("treats a missing, dead or unreadable pidfile as not running", async () => {
    const { sup, runDir } = fresh();
    // A pid that exited: a child of ours, reaped.
    const gone = spawnSync("true");
    assert.equal(gone.status, 0);
    for (const content of ["", "{", "null", JSON.stringify({ pid: "12", command: "sleep" }), JSON.stringify({ pid: gone.pid, hash: "h1", command: "true", startedAt: 1 })]) {
      writeFileSync(join(runDir, "svc.pid"), content);
      assert.equal(sup.isRunning("svc"), false, content);
    }
    assert.equal(await sup.ensure(sleeper()), "started");
    track(sup.pid("svc"));
  });

  it("stop sends SIGTERM, then SIGKILL after the grace period to a child that ignores it", async () => {
    const { sup } = fresh();
    await sup.ensure({ name: "stubborn", command: process.execPath, args: ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], configHash: "x" });
    const pid = track(sup.pid("stubborn"));
    await new Promise((r) => setTimeout(r, 300)); // node installs its SIGTERM handler
    const t0 = Date.now();
    await sup.stop("stubborn", 400);
    const took = Date.now() - t0;
    assert.equal(running(pid), false);
    assert.ok(took >= 400 && took < 400 + 2500, `stop took ${took} ms`);

    await sup.ensure(sleeper());
    const sleepPid = track(sup.pid("svc"));
    const t1 = Date.now();
    await sup.stop("svc", 5000);
    assert.ok(Date.now() - t1 < 2000, "a child that honours SIGTERM is not waited the grace period");
    assert.equal(running(sleepPid), false);
    assert.equal(sup.isRunning("svc"), false);
    await sup.stop("svc"); // stopping what is not running is fine
  });

  it("appends the child's output to its log, across restarts", async () => {
    const { sup } = fresh();
    const spec = (i: number): ServiceSpec => ({
      name: "talker",
      command: process.execPath,
      args: ["-e", `console.log("out${i}"); console.error("err${i}"); setInterval(() => {}, 1000)`],
      configHash: String(i),
    });
    await sup.ensure(spec(1));
    track(sup.pid("talker"));
    await until("the first output", () => existsSync(sup.logFile("talker")) && readFileSync(sup.logFile("talker"), "utf8").includes("err1"));
    await sup.ensure(spec(2));
    track(sup.pid("talker"));
    await until("the second output", () => readFileSync(sup.logFile("talker"), "utf8").includes("err2"));
    const log = readFileSync(sup.logFile("talker"), "utf8");
    assert.match(log, /out1\n/);
    assert.match(log, /err1\n/);
    assert.match(log, /out2\n/);
    assert.equal(statSync(sup.logFile("talker")).mode & 0o777, 0o600);
    await sup.stop("talker");
  });

  it("sets the scheduling priority it is given (as root)", { skip: process.getuid?.() === 0 ? false : "setting a priority needs root" }, async () => {
    const { sup } = fresh();
    await sup.ensure({ ...sleeper(), priority: 7 });
    const pid = track(sup.pid("svc"));
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    assert.equal(Number(stat[16]), 7, "nice value");
    await sup.stop("svc");
  });

  it("refuses a command that does not exist, leaving no pidfile", async () => {
    const { sup, runDir } = fresh();
    await assert.rejects(sup.ensure({ name: "none", command: "/nonexistent/raptiformica-test", args: [], configHash: "x" }), /could not start \/nonexistent\/raptiformica-test/);
    assert.equal(existsSync(join(runDir, "none.pid")), false);
  });
});
