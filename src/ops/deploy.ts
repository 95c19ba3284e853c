import type { Context } from "./context.ts";
import type { Job, JobResult } from "./jobs.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { describeTarget, sshRun, writeSshConfig, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { errorMessage } from "../util/errors.ts";
import type { InventoryHost } from "./inventory.ts";
import { storeLearned } from "./learn.ts";
import { MemberCli } from "./cluster/member-cli.ts";
import { slaveMachine, type SlaveFlags, type SlaveProgress, type SlaveResult } from "./slave.ts";
import { stepLabel } from "./step-labels.ts";
import { memberTargets } from "./via-member.ts";
import { hostPort } from "../mesh/host.ts";

/*
 * `deploy`: `slave` for every host of an inventory, at most `concurrent` at once.
 *
 * No `clean` first. The original wiped every host (`raptiformica_clean.py`) before slaving
 * it, which on a re-deploy onto a live cluster tears each member down — its etcd membership,
 * its data, its agent — and rebuilds it, possibly several voters at once (quorum gone).
 * `slave` converges instead: on a member it updates the code, re-provisions and re-runs
 * `mesh`, keeping the node's identity and its place in the cluster, so it is the update
 * path. A host that must start from scratch can be cleaned explicitly (`raptiformica clean`
 * on it) before deploying.
 *
 * One cluster, not many: when this machine knows no member yet, every host would bootstrap
 * its own one-node cluster if all were slaved at once. So one host — the first of the
 * inventory, or if it fails the next one — is slaved alone first (it bootstraps); the others
 * wait for it and then join through it, concurrently. When members are already known, all
 * hosts go at once.
 *
 * Jump hosts: a host with `via` is reached through ProxyJump, which only needs the jump
 * host's sshd, so it does not wait for the jump host's own slave. When it fails, its jump
 * hosts are checked one by one and the message names the first that cannot be reached (or
 * says that a jump host itself failed to join).
 *
 * Shared state on this machine: the mutable config is updated under a lock, atomically (each
 * slave stores what the cluster told it; deploy refreshes it from a member at the end, so the
 * last view wins, not the last slave to finish); the SSH key and ssh_config are made once
 * before any job starts (concurrent first uses would race on them); new host keys are
 * appended to known_hosts by each ssh, one line per append.
 */

export interface DeployRequest {
  readonly hosts: readonly InventoryHost[];
  readonly serverType: string;
  readonly flags: SlaveFlags;
  readonly concurrent: number;
}

/** Runs the jobs with live progress (the CLI passes `runJobs`). */
export type JobRunner = <T>(jobs: readonly Job<T>[], concurrent: number) => Promise<JobResult<T>[]>;

export interface HostReport {
  readonly dst: string;
  readonly port: number;
  readonly via?: string;
  readonly ok: boolean;
  readonly meshAddress?: string;
  readonly role?: string;
  readonly error?: string;
  /** Time spent slaving this host (without waiting for the first member). */
  readonly seconds: number;
  /** Time waited for the first member to bootstrap the cluster. */
  readonly waitedSeconds: number;
  /** This host bootstrapped the cluster (this machine knew no member before). */
  readonly bootstrapped?: boolean;
}

export interface DeployReport {
  readonly hosts: HostReport[];
  readonly totalSeconds: number;
  /** Why the final refresh from a member did not happen, if it did not. */
  readonly refreshProblem?: string;
}

export type GateTurn = "bootstrap" | "join";

/**
 * Lets exactly one host at a time bootstrap while no member is known, and the rest in once
 * one succeeded. `enter` resolves "bootstrap" for the host that must go alone (lowest index
 * first) or "join" once the cluster exists; the bootstrapping host calls `leave` with its
 * outcome: success opens the gate for everyone, failure hands the turn to the next waiting host.
 */
export class BootstrapGate {
  private state: "free" | "busy" | "open";
  private readonly waiting: { index: number; resolve: (turn: GateTurn) => void }[] = [];

  constructor(open: boolean) {
    this.state = open ? "open" : "free";
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Another host is bootstrapping: `enter` would wait. */
  get isBusy(): boolean {
    return this.state === "busy";
  }

  enter(index: number): Promise<GateTurn> {
    if (this.state === "open") return Promise.resolve("join");
    if (this.state === "free") {
      this.state = "busy";
      return Promise.resolve("bootstrap");
    }
    return new Promise((resolve) => {
      this.waiting.push({ index, resolve });
      this.waiting.sort((a, b) => a.index - b.index);
    });
  }

  leave(succeeded: boolean): void {
    if (this.state !== "busy") return;
    if (succeeded) {
      this.state = "open";
      for (const w of this.waiting.splice(0)) w.resolve("join");
      return;
    }
    const next = this.waiting.shift();
    if (next) next.resolve("bootstrap");
    else this.state = "free";
  }
}

/** How a host of the inventory is named in the report: `dst`, with the port when not 22. Pure; throws nothing. */
export function hostLabel(h: Pick<InventoryHost, "dst" | "port">): string {
  return h.port === 22 ? h.dst : hostPort(h.dst, h.port);
}

/**
 * Deploys every host; never throws for one host's failure (each host's outcome is in the report).
 * @throws UserError only before any host is started: this machine has no usable SSH settings (remote/settings.ts).
 */
export async function deploy(ctx: Context, req: DeployRequest, runner: JobRunner): Promise<DeployReport> {
  const t0 = performance.now();
  const settings = await sshSettings(ctx.paths, ctx.log);
  // Before any concurrent ssh (see writeSshConfig).
  writeSshConfig(settings);
  const assimilate = req.flags.assimilate;
  const gate = new BootstrapGate(!assimilate || knowsMembers(ctx));
  const outcomes = new Map<number, { ok: boolean; error?: string }>();
  const timing = new Map<number, { waited: number; slaved: number; bootstrapped: boolean }>();
  const byDst = new Map(req.hosts.map((h) => [h.dst, h]));

  const jobs: Job<SlaveResult>[] = req.hosts.map((h) => ({
    title: `${hostLabel(h)}${h.via ? ` (via ${h.via})` : ""}`,
    run: async (report) => {
      const started = performance.now();
      let turn: GateTurn = "join";
      if (!gate.isOpen) {
        if (gate.isBusy) report("waiting for the first member");
        turn = await gate.enter(h.index);
      }
      const waited = (performance.now() - started) / 1000;
      const slaveStart = performance.now();
      const progress: SlaveProgress = (step, detail) => report(`${turn === "bootstrap" ? "[first member] " : ""}${stepLabel(step, detail)}`);
      const done = (ok: boolean, error?: string) => {
        outcomes.set(h.index, { ok, ...(error ? { error } : {}) });
        timing.set(h.index, { waited, slaved: (performance.now() - slaveStart) / 1000, bootstrapped: turn === "bootstrap" && ok });
      };
      try {
        const result = await slaveMachine(ctx, { target: h.target, serverType: req.serverType, flags: req.flags }, progress);
        done(true);
        if (turn === "bootstrap") gate.leave(assimilate ? Boolean(result.meshAddress) : true);
        return result;
      } catch (e) {
        let message = errorMessage(e);
        if (h.target.via?.length) message = await explainViaFailure(settings, h, message, byDst, outcomes);
        done(false, message);
        // A host that failed late (after the cluster learned it, e.g. in a hook) still made
        // the cluster: the others join it rather than bootstrap a second one.
        if (turn === "bootstrap") gate.leave(assimilate && knowsMembers(ctx));
        throw new Error(message);
      }
    },
  }));

  const results = await runner(jobs, req.concurrent);
  let hosts: HostReport[] = req.hosts.map((h, i) => {
    const r = results[i];
    const t = timing.get(h.index);
    const base = {
      dst: h.dst,
      port: h.port,
      ...(h.via ? { via: h.via } : {}),
      seconds: round1(t?.slaved ?? r?.seconds ?? 0),
      waitedSeconds: round1(t?.waited ?? 0),
      ...(t?.bootstrapped ? { bootstrapped: true } : {}),
    };
    if (r?.ok) return { ...base, ok: true, ...(r.value.meshAddress ? { meshAddress: r.value.meshAddress } : {}), ...(r.value.role ? { role: r.value.role } : {}) };
    return { ...base, ok: false, error: outcomes.get(h.index)?.error ?? (r && !r.ok ? r.error : "did not run") };
  });

  let refreshProblem: string | undefined;
  const reached = req.hosts.filter((h, i) => hosts[i]?.ok && hosts[i]?.meshAddress).map((h) => h.target);
  if (assimilate && reached.length > 0) {
    try {
      const roles = await refreshFromMember(ctx, settings, reached);
      hosts = hosts.map((r) => (r.ok && r.meshAddress && roles.has(r.meshAddress) ? { ...r, role: roles.get(r.meshAddress) as string } : r));
    } catch (e) {
      refreshProblem = errorMessage(e);
    }
  }
  return { hosts, totalSeconds: round1((performance.now() - t0) / 1000), ...(refreshProblem ? { refreshProblem } : {}) };
}

function knowsMembers(ctx: Context): boolean {
  try {
    return memberTargets(ctx.config.snapshot().mapping).length > 0;
  } catch {
    return false;
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * A host behind jump hosts failed: check its jump hosts in order (each through the ones
 * before it) and name the first that cannot be reached; else mention a jump host whose own
 * slave failed; else keep the host's own error.
 * Throws nothing: a jump host that cannot be reached is the answer.
 */
export async function explainViaFailure(
  s: SshSettings,
  h: InventoryHost,
  message: string,
  byDst: ReadonlyMap<string, InventoryHost>,
  outcomes: ReadonlyMap<number, { ok: boolean; error?: string }>,
): Promise<string> {
  const hops = h.target.via ?? [];
  const who = describeTarget(h.target);
  for (let k = 0; k < hops.length; k++) {
    const hop = hops[k] as SshTarget;
    const target: SshTarget = { ...hop, ...(k > 0 ? { via: hops.slice(0, k) } : {}) };
    try {
      await sshRun(s, target, ["true"], { timeoutMs: 30_000 });
    } catch (e) {
      return `Cannot reach ${who}: its jump host ${hop.host} cannot be reached. ${errorMessage(e)}`;
    }
  }
  const failedHops = hops
    .map((hop) => byDst.get(hop.host))
    .filter((x): x is InventoryHost => x !== undefined && outcomes.get(x.index)?.ok === false)
    .map((x) => x.dst);
  if (failedHops.length) return `${message} (its jump host ${failedHops.join(", ")} failed to join too, so it may have no way into the mesh.)`;
  return message;
}

/**
 * Stores the cluster's current config here (the last word, whichever slave finished last) and
 * returns each member's current role by mesh address, from the first deployed host that answers.
 */
async function refreshFromMember(ctx: Context, s: SshSettings, targets: readonly SshTarget[]): Promise<Map<string, string>> {
  const rf = remoteCommand(ctx.config.snapshot().mapping);
  const tried: string[] = [];
  for (const t of targets.slice(0, 3)) {
    const member = MemberCli.overSsh(s, t, rf);
    try {
      // Data only: code keys stay this machine's own (README, "Trust model").
      await storeLearned(ctx, await member.config(), member.who);
      const roles = new Map<string, string>();
      try {
        for (const row of (await member.members()).members) if (row.role) roles.set(row.meshAddress, row.role);
      } catch {
        /* roles stay as each slave saw them */
      }
      return roles;
    } catch (e) {
      tried.push(`${member.who}: ${errorMessage(e)}`);
    }
  }
  throw new Error(`no deployed host answered (${tried.join("; ")})`);
}
