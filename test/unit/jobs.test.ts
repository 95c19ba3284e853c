import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { jobState, nextClaim, restartDelayMs, slotView } from "../../src/consensus/job-plan.ts";
import { JOBS_PREFIX, OUTPUT_TAIL_BYTES, parseJobEntries, parsePlacement, type JobEntry, type JobRun } from "../../src/consensus/jobs.ts";
import { isEphemeralKey } from "../../src/consensus/kv-config.ts";
import { memberLabels, placementMembers } from "../../src/consensus/labels.ts";
import type { NodeRecord } from "../../src/consensus/registry.ts";
import { osReleaseId } from "../../src/node/labels.ts";
import { TailBuffer, endLeftoverJobs, startJobProcess } from "../../src/node/job-process.ts";
import { processStart } from "../../src/node/process-identity.ts";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { checkJobRequest, jobRunArgv, specFor } from "../../src/ops/job/jobs.ts";
import { parseDuration } from "../../src/util/duration.ts";
import { UserError } from "../../src/util/errors.ts";

// Distinct in their first 16 digits, as real keys are (a member's slot is its short key).
const key = (i: number) => i.toString(16).repeat(64);
let rev = 100;
const entry = (k: string, value: unknown): JobEntry => {
  rev++;
  return { key: `${JOBS_PREFIX}${k}`, value: typeof value === "string" ? value : JSON.stringify(value), createRevision: String(rev), modRevision: String(rev) };
};
const spec = (name: string, extra: Record<string, unknown> = {}) => ({ v: 1, name, argv: ["true"], on: "one", retries: 0, createdAt: 1, ...extra });
const run = (slot: string, attempt: number, extra: Partial<JobRun> = {}): JobRun => ({ v: 1, id: `${slot}-${attempt}`, slot, attempt, member: "n1", publicKey: key(1), startedAt: 1, ...extra });
const record = (i: number, extra: Partial<NodeRecord> = {}): NodeRecord => ({
  publicKey: key(i),
  name: `n${i}`,
  meshAddress: "200::1",
  role: "voter",
  startedAt: 0,
  hostname: "h",
  version: "0",
  yggdrasilMajor: "0.5",
  labels: { arch: "x86_64", distribution: "debian" },
  ...extra,
});

describe("durations (--timeout)", () => {
  it("takes seconds and unit sums", () => {
    assert.deepEqual(parseDuration("90"), { ok: true, seconds: 90 });
    assert.deepEqual(parseDuration("90s"), { ok: true, seconds: 90 });
    assert.deepEqual(parseDuration("1h30m"), { ok: true, seconds: 5400 });
    assert.deepEqual(parseDuration("500ms"), { ok: true, seconds: 0.5 });
    assert.deepEqual(parseDuration("1.5d"), { ok: true, seconds: 129_600 });
  });
  it("refuses what is not one, and zero", () => {
    for (const bad of ["", "s", "5x", "1h30", "-5", "0", "0s", "5 m", "1e3"]) assert.equal(parseDuration(bad).ok, false, bad);
  });
});

describe("placements (--on)", () => {
  it("one, all and LABEL=VALUE", () => {
    assert.deepEqual(parsePlacement("one"), { ok: true, placement: { kind: "one" } });
    assert.deepEqual(parsePlacement("all"), { ok: true, placement: { kind: "all" } });
    assert.deepEqual(parsePlacement("arch=aarch64"), { ok: true, placement: { kind: "label", label: "arch", value: "aarch64" } });
  });
  it("refuses anything else with a sentence", () => {
    for (const bad of ["some", "=x", "arch=", "a b=c", "arch=x y", "arch=a=b"]) {
      const r = parsePlacement(bad);
      assert.equal(r.ok, false, bad);
      if (!r.ok) assert.match(r.problem, /placement|label/);
    }
  });
  it("all: the alive members; a label: those whose built-in, role or config label matches, built-ins winning", () => {
    const records = [record(1), record(2, { labels: { arch: "aarch64", distribution: "ubuntu" } }), record(3, { role: "proxy" })];
    const mapping = { "raptiformica/labels/n3/gpu": "yes", "raptiformica/labels/n1/arch": "riscv64" };
    assert.deepEqual(placementMembers({ kind: "all" }, records, mapping), [key(1), key(2), key(3)]);
    assert.equal(placementMembers({ kind: "one" }, records, mapping), undefined);
    assert.deepEqual(placementMembers({ kind: "label", label: "arch", value: "aarch64" }, records, mapping), [key(2)]);
    assert.deepEqual(placementMembers({ kind: "label", label: "gpu", value: "yes" }, records, mapping), [key(3)]);
    assert.deepEqual(placementMembers({ kind: "label", label: "role", value: "proxy" }, records, mapping), [key(3)]);
    assert.deepEqual(placementMembers({ kind: "label", label: "arch", value: "riscv64" }, records, mapping), []);
    assert.equal(memberLabels(record(1), mapping)["arch"], "x86_64");
  });
  it("a placement no alive member matches is refused, naming the members' labels", () => {
    const r = checkJobRequest({ name: "j", on: "gpu=yes", argv: ["true"] });
    assert.throws(() => specFor(r, [record(1)], {}), (e: unknown) => e instanceof UserError && /n1 \(.*arch=x86_64/.test(e.message));
  });
  it("the distribution label is os-release's ID", () => {
    assert.equal(osReleaseId('NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n'), "debian");
    assert.equal(osReleaseId('ID="opensuse-leap"\n'), "opensuse-leap");
    assert.equal(osReleaseId("NAME=x\n"), undefined);
  });
});

describe("job run's options", () => {
  it("are checked before anything is sent, and survive the trip through a member", () => {
    const r = checkJobRequest({ name: "backup", on: "all", retries: "2", timeout: "5m", argv: ["sh", "-c", "echo $HOME; rm -rf /nope"] });
    assert.deepEqual(r, { name: "backup", on: "all", retries: 2, timeoutSeconds: 300, argv: ["sh", "-c", "echo $HOME; rm -rf /nope"] });
    const argv = jobRunArgv(r);
    const sep = argv.indexOf("--");
    // What the member's commander sees: options before `--`, the command words verbatim after.
    assert.deepEqual(argv.slice(sep + 1), r.argv);
    assert.deepEqual(argv.slice(0, sep), ["job", "run", "--json", "--name", "backup", "--on", "all", "--retries", "2", "--timeout", "300"]);
    assert.match(checkJobRequest({ argv: ["/usr/bin/uptime"] }).name, /^uptime-[0-9a-f]{8}$/);
  });
  it("refuses a bad name, placement, retry count, timeout or a missing command", () => {
    for (const o of [{ name: "a/b" }, { name: "-x" }, { on: "any" }, { retries: "-1" }, { retries: "1.5" }, { retries: "101" }, { timeout: "soon" }, { timeout: "31d" }]) {
      assert.throws(() => checkJobRequest({ ...o, argv: ["true"] }), UserError, JSON.stringify(o));
    }
    assert.throws(() => checkJobRequest({ argv: [] }), UserError);
  });
  it("jobs live only in etcd: never part of the shared config", () => {
    assert.equal(isEphemeralKey(`${JOBS_PREFIX}x/spec`), true);
    assert.equal(isEphemeralKey("raptiformica/labels/n1/gpu"), false);
  });
});

describe("the jobs' KV format (parseJobEntries)", () => {
  it("reads specs, runs, claims and cancel marks; a bad spec is a problem and its job never runs; the rest still work", () => {
    const { jobs, problems } = parseJobEntries([
      entry("good/spec", spec("good")),
      entry("bad/spec", { ...spec("bad"), argv: "rm -rf /" }),
      entry("bad/runs/one-1", run("one", 1, { endedAt: 2, exitCode: 0 })),
      entry("notjson/spec", "{"),
      entry("extra/spec", { ...spec("extra"), shell: true }),
      entry("other/spec", spec("someone-else")),
      entry("good/runs/one-1", run("one", 1, { endedAt: 2, exitCode: 1 })),
      entry("good/runs/one-9", run("one", 2)),
      entry("good/claims/one", { v: 1, run: "one-2", publicKey: key(1), member: "n1" }),
      entry("good/weird", "x"),
      entry("orphan/runs/one-1", run("one", 1)),
      entry("bad name/spec", spec("x")),
    ]);
    assert.deepEqual(
      jobs.map((j) => [j.name, j.spec !== undefined]),
      [
        ["bad", false],
        ["extra", false],
        ["good", true],
        ["notjson", false],
        ["orphan", false],
        ["other", false],
      ],
    );
    const keys = problems.map((p) => p.key.slice(JOBS_PREFIX.length)).sort();
    assert.deepEqual(keys, ["bad name/spec", "bad/spec", "extra/spec", "good/runs/one-9", "good/weird", "notjson/spec", "orphan/spec", "other/spec"]);
    for (const p of problems) assert.match(p.message, /raptiformica\/jobs\//);
    const good = jobs.find((j) => j.name === "good");
    assert.equal(good?.runs.length, 1);
    assert.equal(good?.claims.length, 1);
    // A job without a usable spec is never claimed, whatever else is there.
    for (const j of jobs.filter((x) => !x.spec)) {
      assert.equal(nextClaim(j, key(1)), undefined);
      assert.equal(jobState(j), "bad spec");
    }
    // The bad job's good run is still shown.
    assert.equal(jobs.find((j) => j.name === "bad")?.runs.length, 1);
  });
  it("a cancel mark that cannot be read still cancels", () => {
    const { jobs, problems } = parseJobEntries([entry("j/spec", spec("j")), entry("j/cancelled", "nope")]);
    assert.equal(problems.length, 1);
    assert.equal(nextClaim(jobs[0]!, key(1)), undefined);
  });
});

describe("what a member may claim (nextClaim) and a job's state", () => {
  const parse = (...es: JobEntry[]) => parseJobEntries(es).jobs[0]!;
  const claim = (slot: string, runId: string, who = 1) => entry(`j/claims/${slot}`, { v: 1, run: runId, publicKey: key(who), member: `n${who}` });

  it("--on one: every member may try the one slot while nobody holds it, none while it is claimed or done", () => {
    const fresh = parse(entry("j/spec", spec("j")));
    assert.deepEqual(nextClaim(fresh, key(1)), { slot: "one", attempt: 1, notBefore: 0 });
    assert.deepEqual(nextClaim(fresh, key(2)), { slot: "one", attempt: 1, notBefore: 0 });
    assert.equal(jobState(fresh), "pending");
    const running = parse(entry("j/spec", spec("j")), entry("j/runs/one-1", run("one", 1)), claim("one", "one-1"));
    assert.equal(nextClaim(running, key(2)), undefined);
    assert.equal(jobState(running), "running");
    const done = parse(entry("j/spec", spec("j")), entry("j/runs/one-1", run("one", 1, { endedAt: 5, exitCode: 0 })));
    assert.equal(nextClaim(done, key(2)), undefined);
    assert.equal(jobState(done), "succeeded");
  });
  it("--retries: a failed run runs again until the retries are used up; a lost run (its member died) runs again without using one", () => {
    const failedOnce = (retries: number) => parse(entry("j/spec", spec("j", { retries })), entry("j/runs/one-1", run("one", 1, { endedAt: 5, exitCode: 3 })));
    assert.deepEqual(nextClaim(failedOnce(1), key(2)), { slot: "one", attempt: 2, notBefore: 0 });
    assert.equal(nextClaim(failedOnce(0), key(2)), undefined);
    assert.equal(jobState(failedOnce(0)), "failed");
    const timedOut = parse(entry("j/spec", spec("j", { retries: 0 })), entry("j/runs/one-1", run("one", 1, { endedAt: 5, exitCode: null, timedOut: true })));
    assert.equal(jobState(timedOut), "failed");
    const lost = parse(entry("j/spec", spec("j", { retries: 0 })), entry("j/runs/one-1", run("one", 1)));
    assert.deepEqual(nextClaim(lost, key(2)), { slot: "one", attempt: 2, notBefore: 0 });
    assert.equal(slotView(lost, "one").failures, 0);
  });
  it("--on all: each listed member its own slot, members not listed none", () => {
    const j = parse(entry("j/spec", spec("j", { on: "all", members: [key(1), key(2)] })), entry(`j/runs/${key(1).slice(0, 16)}-1`, run(key(1).slice(0, 16), 1, { endedAt: 3, exitCode: 0 })));
    assert.equal(nextClaim(j, key(1)), undefined);
    assert.deepEqual(nextClaim(j, key(2)), { slot: key(2).slice(0, 16), attempt: 1, notBefore: 0 });
    assert.equal(nextClaim(j, key(3)), undefined);
    assert.equal(jobState(j), "pending");
  });
  it("a cancelled job: nothing more is claimed; its state says so once nothing runs", () => {
    const j = parse(entry("j/spec", spec("j")), entry("j/cancelled", { v: 1, at: 9 }));
    assert.equal(nextClaim(j, key(1)), undefined);
    assert.equal(jobState(j), "cancelled");
  });
  it("a spec must list members exactly for all and label placements", () => {
    const { problems } = parseJobEntries([entry("a/spec", spec("a", { on: "all" })), entry("b/spec", spec("b", { members: [key(1)] }))]);
    assert.equal(problems.length, 2);
  });
});

describe("services (--restart always)", () => {
  const parse = (...es: JobEntry[]) => parseJobEntries(es).jobs[0]!;
  const svc = (extra: Record<string, unknown> = {}) => entry("s/spec", spec("s", { restart: "always", ...extra }));
  it("are never done: after a run ends, however it ended, the one slot is claimed again, by any member", () => {
    for (const end of [{ exitCode: 0 }, { exitCode: 1 }, { exitCode: null, timedOut: true }]) {
      const j = parse(svc(), entry("s/runs/one-1", run("one", 1, { startedAt: 0, endedAt: 60_000, ...end })));
      assert.equal(jobState(j), "pending");
      assert.deepEqual(nextClaim(j, key(2)), { slot: "one", attempt: 2, notBefore: 60_000 });
    }
    const running = parse(svc(), entry("s/runs/one-1", run("one", 1)), entry("s/claims/one", { v: 1, run: "one-1", publicKey: key(1), member: "n1" }));
    assert.equal(jobState(running), "running");
    assert.equal(nextClaim(running, key(2)), undefined);
    // Lost with its member: taken over at once.
    const lost = parse(svc(), entry("s/runs/one-1", run("one", 1)));
    assert.deepEqual(nextClaim(lost, key(2)), { slot: "one", attempt: 2, notBefore: 0 });
  });
  it("LABEL=VALUE: one instance, on one of the members with the label", () => {
    const j = parse(svc({ on: "gpu=yes", members: [key(1), key(2)] }));
    assert.deepEqual(nextClaim(j, key(2)), { slot: "one", attempt: 1, notBefore: 0 });
    assert.equal(nextClaim(j, key(3)), undefined);
    assert.equal(parseJobEntries([svc({ on: "all", members: [key(1)] })]).problems.length, 1, "restart always on all is not a spec");
  });
  it("a service that keeps exiting quickly waits 1 s, 2 s, 4 s … up to a minute before it starts again", () => {
    const quick = (n: number) => Array.from({ length: n }, (_, i) => ({ ...run("one", i + 1, { startedAt: i * 100, endedAt: i * 100 + 50, exitCode: 1 }), createRevision: "1" }));
    assert.equal(restartDelayMs([]), 0);
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => restartDelayMs(quick(n))), [1000, 2000, 4000, 8000, 60_000]);
    const longLast = [...quick(5), { ...run("one", 6, { startedAt: 0, endedAt: 20_000, exitCode: 1 }), createRevision: "1" }];
    assert.equal(restartDelayMs(longLast), 0, "a run that lasted resets the backoff");
  });
  it("job run refuses --restart with another policy, with --on all, or with --retries", () => {
    assert.equal(checkJobRequest({ restart: "always", argv: ["sleep", "9"] }).restart, "always");
    assert.deepEqual(jobRunArgv(checkJobRequest({ name: "s", restart: "always", argv: ["x"] })).slice(-4), ["--restart", "always", "--", "x"]);
    for (const o of [{ restart: "on-failure" }, { restart: "always", on: "all" }, { restart: "always", retries: "2" }]) assert.throws(() => checkJobRequest({ ...o, argv: ["x"] }), UserError, JSON.stringify(o));
  });
});

describe("a job's process (startJobProcess)", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-job-"));
  it("runs argv without a shell, keeps the whole log and the tail, passes the environment", async () => {
    const log = join(dir, "a", "run.log");
    const p = startJobProcess({ argv: ["sh", "-c", 'head -c 10000 /dev/zero | tr "\\0" x; echo; echo "fence=$F" >&2; exit 3'], env: { ...process.env, F: "42" }, cwd: dir, logFile: log, tailBytes: OUTPUT_TAIL_BYTES });
    const end = await p.ended;
    assert.equal(end.exitCode, 3);
    assert.equal(end.timedOut, false);
    assert.ok(end.tail.length <= OUTPUT_TAIL_BYTES);
    assert.match(end.tail, /fence=42\n$/);
    assert.ok(readFileSync(log, "utf8").length > 10_000);
    // `;` and `$HOME` reach the program as words: no shell ran them.
    const echo = await startJobProcess({ argv: ["echo", "a;", "$HOME"], env: process.env, cwd: dir, logFile: join(dir, "b.log"), tailBytes: 100 }).ended;
    assert.equal(echo.tail, "a; $HOME\n");
  });
  it("a timeout kills the whole process group, children too", async () => {
    const t0 = Date.now();
    const end = await startJobProcess({ argv: ["sh", "-c", "sleep 30 & sleep 30; echo never"], env: process.env, cwd: dir, logFile: join(dir, "c.log"), tailBytes: 100, timeoutMs: 300, graceMs: 500 }).ended;
    assert.equal(end.timedOut, true);
    assert.equal(end.exitCode, null);
    assert.ok(Date.now() - t0 < 5000, "the group's children held the pipes open");
  });
  it("a command that does not exist ends with its error", async () => {
    const end = await startJobProcess({ argv: ["/nonexistent/cmd"], env: process.env, cwd: dir, logFile: join(dir, "d.log"), tailBytes: 100 }).ended;
    assert.equal(end.exitCode, null);
    assert.match(end.error ?? "", /ENOENT/);
    rmSync(dir, { recursive: true, force: true });
  });
  it("names itself in its pid file while it runs", async () => {
    const d = mkdtempSync(join(tmpdir(), "rf-job-"));
    const pidFile = join(d, "run", "j.one-1.pid");
    const p = startJobProcess({ argv: ["sleep", "0.3"], env: process.env, cwd: d, logFile: join(d, "l.log"), tailBytes: 100, pidFile });
    const { pid, start } = JSON.parse(readFileSync(pidFile, "utf8")) as { pid: number; start: string };
    assert.equal(processStart(pid)?.start, start);
    await p.ended;
    assert.equal(existsSync(pidFile), false);
    rmSync(d, { recursive: true, force: true });
  });
  it("a leftover of a dead runner is ended by the next one, its whole group; a pid handed out again is never hit", async () => {
    const d = mkdtempSync(join(tmpdir(), "rf-job-"));
    mkdirSync(join(d, "jobs"));
    const started = (argv: string[]) => {
      const c = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: "ignore" });
      const gone = new Promise<void>((r) => c.on("exit", () => r()));
      return { pid: c.pid!, gone };
    };
    const childFile = join(d, "child");
    const left = started(["sh", "-c", `sleep 30 & echo $! > ${childFile}; wait`]);
    const other = started(["sleep", "30"]);
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(join(d, "jobs", "a.one-1.pid"), JSON.stringify({ pid: left.pid, start: processStart(left.pid)!.start }));
    // The same pid with another start: another process now (a pid handed out again).
    writeFileSync(join(d, "jobs", "b.one-1.pid"), JSON.stringify({ pid: other.pid, start: "another-boot/1" }));
    writeFileSync(join(d, "jobs", "c.one-1.pid"), "not json");
    assert.deepEqual(endLeftoverJobs(join(d, "jobs")), [left.pid]);
    await left.gone;
    const child = Number(readFileSync(childFile, "utf8"));
    for (let i = 0; i < 50 && processStart(child) && processStart(child)?.state !== "Z"; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(processStart(child) === undefined || processStart(child)?.state === "Z", "the leftover's child went with its group");
    assert.ok(processStart(other.pid) !== undefined, "the process whose start differs is left alone");
    process.kill(other.pid, "SIGKILL");
    assert.deepEqual(readdirSync(join(d, "jobs")), []);
    rmSync(d, { recursive: true, force: true });
  });
  it("the tail buffer keeps the last bytes", () => {
    const t = new TailBuffer(5);
    for (const s of ["abc", "defg", "hi"]) t.push(Buffer.from(s));
    assert.equal(t.text(), "efghi");
  });
});
