/**
 * The chaos run's faults: each kind one small function over a lab cluster, and a schedule of
 * them from a seeded PRNG (the same seed, the same faults on the same members with the same
 * timings, so a run can be replayed).
 *
 * Kinds:
 * - `kill-etcd`, `kill-agent`, `kill-yggdrasil`: SIGKILL of that process on one member (etcd:
 *   the member's etcd, or its grpc-proxy on a proxy member); nothing restarts it but the
 *   member itself (the agent's supervisor, the agent's keeper).
 * - `kill-member`: every process of one member killed (a power cut), down for `holdMs`, then
 *   started again with `raptiformica mesh --no-after-mesh`, as the machine's boot would.
 * - `partition-minority` / `partition-majority`: the members in `targets` (a minority of the
 *   members, or a majority) cut off from the others for `holdMs` (blackhole routes to each
 *   other's addresses on both sides: packets vanish, nothing is told), then healed.
 * - `link-flap`: one member's cable pulled and put back `times` times (`flapMs` down, half that up).
 * - `move`: one member's address replaced by a new one (a new DHCP lease): nobody is told.
 * - `restart-all`: every member killed and started again at once, `times` rounds in a row.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LabCluster } from "../helpers/cluster.ts";
import { sleep } from "../lab/index.ts";
import { ipBatch, pidsInNamespaces } from "../lab/netns.ts";
import { runningAgent } from "../../src/node/agent-lock.ts";
import { nodePaths } from "../../src/node/paths.ts";
import { intBetween, mulberry32, pick, seedFor } from "./prng.ts";

export const FAULT_KINDS = [
  "kill-etcd",
  "kill-agent",
  "kill-yggdrasil",
  "kill-member",
  "partition-minority",
  "partition-majority",
  "link-flap",
  "move",
  "restart-all",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One planned fault: what, on which members (lab indices), for how long. */
export interface FaultPlan {
  readonly kind: FaultKind;
  /** kill-*, link-flap, move: the one member; partitions: the side cut off; restart-all: every member. */
  readonly targets: readonly number[];
  /** How long the fault stands before it is healed (partitions, kill-member), ms; 0 otherwise. */
  readonly holdMs: number;
  /** link-flap: flaps; restart-all: rounds; 1 otherwise. */
  readonly times: number;
  /** link-flap: each time down (then half of it up); restart-all: down time per round; ms. */
  readonly flapMs: number;
  /** Pause after the cluster recovered, before the next fault, ms. */
  readonly pauseMs: number;
}

/**
 * The fault schedule: an endless sequence of plans for a cluster of `members` members, each
 * kind drawn uniformly from `kinds`, targets and timings from the same stream.
 * @throws Error when `kinds` is empty or names an unknown kind, or members < 3.
 */
export function* schedule(seed: number, kinds: readonly FaultKind[], members: number): Generator<FaultPlan, never> {
  if (kinds.length === 0) throw new Error("no fault kinds to schedule");
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${k}; known: ${FAULT_KINDS.join(", ")}`);
  if (members < 3) throw new Error("the chaos schedule needs at least 3 members");
  const rand = mulberry32(seedFor(seed, "schedule"));
  const all = Array.from({ length: members }, (_, i) => i);
  const minority = Math.floor((members - 1) / 2);
  const side = (size: number) => {
    const pool = [...all];
    const out: number[] = [];
    for (let k = 0; k < size; k++) out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]!);
    return out.sort((a, b) => a - b);
  };
  for (;;) {
    const kind = pick(rand, kinds);
    const one = [intBetween(rand, 0, members - 1)];
    const pauseMs = intBetween(rand, 1000, 5000);
    const base = { kind, targets: one, holdMs: 0, times: 1, flapMs: 0, pauseMs };
    switch (kind) {
      case "kill-etcd":
      case "kill-agent":
      case "kill-yggdrasil":
      case "move":
        yield base;
        break;
      case "kill-member":
        yield { ...base, holdMs: intBetween(rand, 2000, 10_000) };
        break;
      case "partition-minority":
        yield { ...base, targets: side(intBetween(rand, 1, minority)), holdMs: intBetween(rand, 5000, 20_000) };
        break;
      case "partition-majority":
        yield { ...base, targets: side(intBetween(rand, minority + 1, members - 1)), holdMs: intBetween(rand, 5000, 20_000) };
        break;
      case "link-flap":
        yield { ...base, times: intBetween(rand, 3, 6), flapMs: intBetween(rand, 300, 3000) };
        break;
      case "restart-all":
        yield { ...base, targets: all, times: intBetween(rand, 2, 3), flapMs: intBetween(rand, 0, 3000) };
        break;
    }
  }
}

/**
 * The members whose side of the fault still holds a majority of the voters, and which the fault
 * does not cut off from the mesh themselves: their local endpoint is expected to answer
 * throughout (the stall figure). `voters`: lab indices of the voters when the fault began;
 * `members`: how many members there are.
 * - kill-etcd, kill-agent: everyone (the victim's own etcd or proxy comes back by itself; its
 *   applications wait for it — that wait is what the figure shows);
 * - kill-yggdrasil, kill-member, link-flap, move: everyone but the victim;
 * - partitions: the side holding a majority of the voters, if any;
 * - restart-all: no one.
 */
export function quorumSide(plan: Pick<FaultPlan, "kind" | "targets">, voters: readonly number[], members: number): number[] {
  const all = Array.from({ length: members }, (_, i) => i);
  const majority = (side: readonly number[]) => voters.filter((v) => side.includes(v)).length * 2 > voters.length;
  switch (plan.kind) {
    case "kill-etcd":
    case "kill-agent":
      return majority(all) ? all : [];
    case "kill-yggdrasil":
    case "kill-member":
    case "link-flap":
    case "move": {
      const rest = all.filter((i) => !plan.targets.includes(i));
      return majority(rest) ? rest : [];
    }
    case "partition-minority":
    case "partition-majority": {
      const cut = all.filter((i) => plan.targets.includes(i));
      const rest = all.filter((i) => !plan.targets.includes(i));
      return majority(rest) ? rest : majority(cut) ? cut : [];
    }
    case "restart-all":
      return [];
  }
}

/** The lab cluster as the faults see it; `addresses` follows moves. */
export interface ChaosLab {
  readonly c: LabCluster;
  /** Each member's current IPv4 address on the lab segment. */
  readonly addresses: string[];
  /** Addresses handed out by moves so far. */
  moves: number;
}

/** What injecting a fault left to undo (partitions: the routes; kill-member: the restart). */
export interface Injected {
  heal(): Promise<void>;
  /** What was done, for the run's log (e.g. "pid 1234"). */
  readonly note: string;
}

/** Pids in member i's namespace whose argv[0] matches `argv0` (e.g. /(^|\/)etcd$/). */
export function pidsNamed(cl: ChaosLab, i: number, argv0: RegExp): number[] {
  const ns = cl.c.lab.nodes[i]!.ns;
  const out: number[] = [];
  for (const pid of pidsInNamespaces([ns]).get(ns) ?? []) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (argv0.test(cmd)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

function killAll(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, "SIGKILL");
      return true;
    } catch {
      return false;
    }
  });
}

const nothing = async () => undefined;

async function killProcess(cl: ChaosLab, i: number, what: string, find: () => number[]): Promise<Injected> {
  const killed = killAll(find());
  return { heal: nothing, note: killed.length > 0 ? `${what} pid ${killed.join(", ")} killed on n${i}` : `no ${what} ran on n${i}` };
}

/** The agent's pid on member i (the process its claim names), if it runs. */
function agentPids(cl: ChaosLab, i: number): number[] {
  const pid = runningAgent(nodePaths(join(cl.c.lab.nodes[i]!.cacheDir, "node")));
  return pid === undefined ? [] : [pid];
}

async function restartMember(cl: ChaosLab, i: number): Promise<void> {
  await cl.c.rfOk(i, ["mesh", "--no-after-mesh"], 180_000);
}

async function routes(cl: ChaosLab, a: readonly number[], b: readonly number[], op: "add" | "del"): Promise<void> {
  const lab = cl.c.lab;
  const tasks: Promise<void>[] = [];
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    for (const i of from) {
      const lines = to.map((j) => `route ${op} blackhole ${cl.addresses[j]}/32`);
      tasks.push(ipBatch(lines, { ns: lab.nodes[i]!.ns, force: op === "del" }));
    }
  }
  await Promise.all(tasks);
}

async function partition(cl: ChaosLab, plan: FaultPlan): Promise<Injected> {
  const cut = [...plan.targets];
  const rest = cl.c.lab.nodes.map((n) => n.index).filter((i) => !cut.includes(i));
  await routes(cl, cut, rest, "add");
  return {
    heal: () => routes(cl, cut, rest, "del"),
    note: `${cut.map((i) => `n${i}`).join(",")} cut off from ${rest.map((i) => `n${i}`).join(",")}`,
  };
}

/** The fault functions, one per kind (module doc). */
export const FAULTS: Record<FaultKind, (cl: ChaosLab, plan: FaultPlan) => Promise<Injected>> = {
  "kill-etcd": (cl, p) => killProcess(cl, p.targets[0]!, "etcd", () => pidsNamed(cl, p.targets[0]!, /(^|\/)etcd$/)),
  "kill-agent": (cl, p) => killProcess(cl, p.targets[0]!, "agent", () => agentPids(cl, p.targets[0]!)),
  "kill-yggdrasil": (cl, p) => killProcess(cl, p.targets[0]!, "yggdrasil", () => pidsNamed(cl, p.targets[0]!, /(^|\/)yggdrasil$/)),
  "kill-member": async (cl, p) => {
    const i = p.targets[0]!;
    await cl.c.lab.killNode(i);
    return { heal: () => restartMember(cl, i), note: `n${i} killed whole, down ${(p.holdMs / 1000).toFixed(1)} s` };
  },
  "partition-minority": partition,
  "partition-majority": partition,
  "link-flap": async (cl, p) => {
    const i = p.targets[0]!;
    for (let k = 0; k < p.times; k++) {
      await cl.c.lab.unplug(i);
      await sleep(p.flapMs);
      await cl.c.lab.plug(i);
      await sleep(p.flapMs / 2);
    }
    return { heal: () => cl.c.lab.plug(i), note: `n${i}'s link down ${p.times}× ${p.flapMs} ms` };
  },
  move: async (cl, p) => {
    const i = p.targets[0]!;
    const old = cl.addresses[i]!;
    const fresh = `198.18.2.${++cl.moves}`;
    // The old one first: added before it, the new address would become a secondary one and go with it.
    for (const args of [
      ["ip", "addr", "del", `${old}/16`, "dev", "seg0"],
      ["ip", "addr", "add", `${fresh}/16`, "dev", "seg0"],
    ]) {
      const r = await cl.c.lab.exec(i, args);
      if (r.exitCode !== 0) throw new Error(`n${i}: ${args.join(" ")}: ${r.stderr.trim()}`);
    }
    cl.addresses[i] = fresh;
    return { heal: nothing, note: `n${i} moved from ${old} to ${fresh}` };
  },
  "restart-all": async (cl, p) => {
    const all = cl.c.lab.nodes.map((n) => n.index);
    for (let round = 0; round < p.times; round++) {
      await Promise.all(all.map((i) => cl.c.lab.killNode(i)));
      await sleep(p.flapMs);
      await Promise.all(all.map((i) => restartMember(cl, i)));
    }
    return { heal: nothing, note: `every member killed and started again, ${p.times} rounds (down ${p.flapMs} ms each)` };
  },
};
