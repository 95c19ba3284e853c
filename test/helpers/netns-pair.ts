import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { detectYggdrasil, type Major, type YggdrasilInfo } from "../../src/mesh/yggdrasil/version.ts";
import { run } from "../../src/util/exec.ts";
import { ROOT } from "./cli.ts";

/*
 * Test helpers for the Yggdrasil layer: finding both yggdrasil majors, and throwaway network
 * namespaces joined by veth pairs. Only addresses inside those namespaces (198.18.0.0/15) and
 * loopback are ever used; everything is removed by `destroy`.
 */

export const YGG05_DIR = process.env["RAPTIFORMICA_YGG05_DIR"] ?? "/opt/raptiformica-test/yggdrasil-0.5";
export const YGG05_BIN = join(YGG05_DIR, "root", "usr", "sbin", "yggdrasil");
const FETCH_SCRIPT = join(ROOT, "scripts", "fetch-yggdrasil-0.5.sh");

let ygg05: { bin: string } | { skip: string } | undefined;

/**
 * The Yggdrasil 0.5 binary for a test or benchmark, or why there is none (the reason to skip
 * with): scripts/fetch-yggdrasil-0.5.sh is run for YGG05_DIR, which reuses a working binary at
 * once and otherwise fetches Debian trixie's package (serialised by a lock in that dir; up to
 * 300 s). `skip` is the script's last line on stderr, or its exit status. Synchronous, so a
 * `describe` can use it for its `skip`; asked once per process, the answer kept. Never throws.
 */
export function yggdrasil05(): { bin: string } | { skip: string } {
  if (ygg05) return ygg05;
  const r = spawnSync("sh", [FETCH_SCRIPT, YGG05_DIR], { encoding: "utf8", timeout: 300_000 });
  const bin = (r.stdout ?? "").trim().split("\n").pop() ?? "";
  ygg05 =
    r.status === 0 && bin
      ? { bin }
      : { skip: `no Yggdrasil 0.5 binary: ${(r.stderr ?? "").trim().split("\n").pop() || (r.error ? r.error.message : `fetch-yggdrasil-0.5.sh exited ${r.status}`)}` };
  return ygg05;
}

export interface Binaries {
  /** Per major: the binary, or why tests of that major are skipped. */
  get(major: Major): { info: YggdrasilInfo } | { skip: string };
}

/**
 * The Debian 0.4 binary on PATH and the 0.5 one that scripts/fetch-yggdrasil-0.5.sh puts in
 * YGG05_DIR (run here when missing). A major that cannot be had is skipped, with the reason.
 */
export async function findYggdrasilBinaries(): Promise<Binaries> {
  const found = new Map<Major, { info: YggdrasilInfo } | { skip: string }>();

  const v04 = await detectYggdrasil("yggdrasil");
  if (!v04.ok) found.set("0.4", { skip: `yggdrasil 0.4 not available: ${v04.error}` });
  else if (v04.value.major !== "0.4") found.set("0.4", { skip: `the yggdrasil on PATH is ${v04.value.version}, not 0.4 (Debian 12 ships 0.4)` });
  else found.set("0.4", { info: v04.value });

  let fetchProblem = "";
  if (!existsSync(YGG05_BIN)) {
    const r = await run("sh", [FETCH_SCRIPT, YGG05_DIR], { timeoutMs: 300_000 });
    if (r.exitCode !== 0) fetchProblem = ` (${FETCH_SCRIPT} failed, exit ${r.exitCode}: ${(r.stderr.trim().split("\n").pop() ?? "").slice(0, 300)})`;
  }
  const v05 = await detectYggdrasil(YGG05_BIN);
  if (!v05.ok) found.set("0.5", { skip: `yggdrasil 0.5 not available at ${YGG05_BIN}${fetchProblem}: ${v05.error}` });
  else if (v05.value.major !== "0.5") found.set("0.5", { skip: `${YGG05_BIN} is ${v05.value.version}, not 0.5` });
  else found.set("0.5", { info: v05.value });

  return { get: (major) => found.get(major)! };
}

async function must(file: string, args: string[]): Promise<string> {
  const r = await run(file, args, { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(" ")} failed (exit ${r.exitCode}): ${r.failedToStart ?? r.stderr.trim()}`);
  return r.stdout;
}

/** Runs argv inside a namespace. */
export function inNetns(ns: string, argv: string[], timeoutMs = 15_000) {
  const [file, ...args] = argv;
  return run("ip", ["netns", "exec", ns, file!, ...args], { timeoutMs });
}

export interface NetnsLab {
  /** Namespace names by the label given to createLab. */
  readonly ns: Record<string, string>;
  /** IPv4 address of `label` on the link to `other`. */
  addr(label: string, other: string): string;
  destroy(): Promise<void>;
}

/** Whether we may create namespaces here (root and iproute2). */
export async function netnsUsable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const r = await run("ip", ["netns", "list"], { timeoutMs: 5_000 });
  if (r.exitCode !== 0) return `ip netns does not work here: ${r.failedToStart ?? r.stderr.trim()}`;
  return undefined;
}

/**
 * Creates one namespace per label (random suffix, so parallel runs and leftovers never clash),
 * with IPv6 enabled and lo up, and a veth pair for each link. Link i uses 198.18.i.0/24 with
 * .1 on its first end and .2 on its second. On failure, whatever was created is removed.
 */
export async function createLab(labels: string[], links: [string, string][]): Promise<NetnsLab> {
  const id = randomBytes(3).toString("hex");
  const ns: Record<string, string> = {};
  const addrs = new Map<string, string>();
  const created: string[] = [];
  const destroy = async () => {
    for (const name of created.splice(0)) await run("ip", ["netns", "del", name], { timeoutMs: 15_000 });
  };
  try {
    for (const label of labels) {
      const name = `rfy${id}${label}`;
      await must("ip", ["netns", "add", name]);
      created.push(name);
      ns[label] = name;
      await must("ip", ["-n", name, "link", "set", "lo", "up"]);
      await must("ip", ["netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"]);
      await must("ip", ["netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0"]);
    }
    for (const [a, b] of links) {
      if (!ns[a] || !ns[b]) throw new Error(`link ${a}-${b}: unknown label`);
    }
    for (const [i, [a, b]] of links.entries()) {
      // Interface names: at most 15 characters ("rfy" + 6 hex + "-" + 2 labels + index fits).
      const ifA = `rfy${id}${a}${b}${i}`.slice(0, 15);
      const ifB = `rfy${id}${b}${a}${i}`.slice(0, 15);
      await must("ip", ["link", "add", ifA, "netns", ns[a]!, "type", "veth", "peer", "name", ifB, "netns", ns[b]!]);
      addrs.set(`${a}>${b}`, `198.18.${i + 1}.1`);
      addrs.set(`${b}>${a}`, `198.18.${i + 1}.2`);
      await must("ip", ["-n", ns[a]!, "addr", "add", `198.18.${i + 1}.1/24`, "dev", ifA]);
      await must("ip", ["-n", ns[b]!, "addr", "add", `198.18.${i + 1}.2/24`, "dev", ifB]);
      await must("ip", ["-n", ns[a]!, "link", "set", ifA, "up"]);
      await must("ip", ["-n", ns[b]!, "link", "set", ifB, "up"]);
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    ns,
    addr(label, other) {
      const a = addrs.get(`${label}>${other}`);
      if (!a) throw new Error(`no link between ${label} and ${other}`);
      return a;
    },
    destroy,
  };
}
