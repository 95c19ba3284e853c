import { spawn } from "node:child_process";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { run, type Outcome } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { hostPort } from "../mesh/host.ts";
import { remoteCommandLine } from "./quote.ts";
import { makePrivateDir } from "../util/private-dir.ts";

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user?: string;
  /** Jump hosts, outermost first (ProxyJump). */
  readonly via?: readonly SshTarget[];
}

export interface SshSettings {
  /** `<cache>/known_hosts`: trust on first use, raptiformica's own. */
  readonly knownHosts: string;
  /** Where raptiformica's ssh_config lives (the cache dir's ssh/). */
  readonly stateDir: string;
  /** Identity files to offer besides the agent's keys. */
  readonly identities: readonly string[];
  readonly connectTimeoutSeconds?: number;
}

/** `root@host`, `root@host:2222`, `root@[2001:db8::1]:2222` (with its jump hosts): for messages. */
export function describeTarget(t: SshTarget): string {
  const base = `${t.user ?? "root"}@${t.port === 22 ? t.host : hostPort(t.host, t.port)}`;
  return t.via?.length ? `${base} (via ${t.via.map(describeTarget).join(" → ")})` : base;
}

function hostForUri(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function jumpSpec(t: SshTarget): string {
  return `${t.user ?? "root"}@${hostForUri(t.host)}:${t.port}`;
}

/**
 * The ssh_config raptiformica connects with: batch mode (never a password prompt), connection
 * reuse, its own known_hosts with trust on first use — a *changed* key is refused — and
 * keepalives so a dead host fails the command instead of hanging it. A config file (not -o
 * flags) because ssh applies it to ProxyJump hosts too, which -o options do not reach.
 */
export function renderSshConfig(s: SshSettings): string {
  const q = (v: string) => `"${v}"`;
  return [
    "Host *",
    "  BatchMode yes",
    `  UserKnownHostsFile ${q(s.knownHosts)}`,
    "  StrictHostKeyChecking accept-new",
    "  HashKnownHosts no",
    // Never the user's agent on a member for raptiformica's own commands: only the user's
    // interactive `raptiformica ssh` asks for it (-A, which wins over this line).
    "  ForwardAgent no",
    `  ConnectTimeout ${s.connectTimeoutSeconds ?? 5}`,
    // A shared master to a host that died would otherwise stall every command on it for long.
    "  ServerAliveInterval 5",
    "  ServerAliveCountMax 2",
    // Connection reuse: commands use a master connection when one is there (see ensureMaster)
    // and connect directly otherwise. Never `ControlMaster auto`: a master forked by a command
    // keeps that command's output pipes open, which hangs captured runs.
    "  ControlMaster no",
    ...(controlPathFits(s) ? [`  ControlPath ${q(controlPath(s))}`] : []),
    "  LogLevel ERROR",
    ...s.identities.map((id) => `  IdentityFile ${q(id)}`),
    "",
  ].join("\n");
}

/** `%C` is a 40-hex hash of the connection; unix socket paths must stay under ~104 bytes. */
function controlPath(s: SshSettings): string {
  return join(s.stateDir, "cm-%C");
}

function controlPathFits(s: SshSettings): boolean {
  return controlPath(s).length - 2 + 40 < 100;
}

const masters = new Map<string, Promise<void>>();

/**
 * Starts a master connection to the target once per process, detached from every pipe
 * (`-f -N`, stdio ignored) and living on for a minute of idleness, so the many commands of a
 * slave share one SSH handshake. If it cannot start, commands simply connect on their own and
 * report the failure themselves.
 */
function ensureMaster(s: SshSettings, t: SshTarget): Promise<void> {
  if (!controlPathFits(s)) return Promise.resolve();
  const id = `${s.stateDir}\0${describeTarget(t)}`;
  let started = masters.get(id);
  if (!started) {
    started = new Promise<void>((resolve) => {
      const child = spawn("ssh", [...sshOptions(s, t), "-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-f", "-N", `${t.user ?? "root"}@${t.host}`], {
        stdio: "ignore",
      });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, 30_000);
      child.on("error", () => resolve());
      child.on("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    masters.set(id, started);
  }
  return started;
}

export function sshConfigPath(s: SshSettings): string {
  return join(s.stateDir, "ssh_config");
}

export function sshOptions(s: SshSettings, t: SshTarget): string[] {
  const opts = ["-F", sshConfigPath(s), "-p", String(t.port)];
  if (t.via?.length) opts.push("-J", t.via.map(jumpSpec).join(","));
  return opts;
}

export function sshArgv(s: SshSettings, t: SshTarget, remoteArgv: readonly string[]): string[] {
  return [...sshOptions(s, t), `${t.user ?? "root"}@${t.host}`, "--", remoteCommandLine(remoteArgv)];
}

/**
 * The ssh argv (without `ssh` itself) for the user's own session on `t`: an interactive login
 * (`-t`) when `command` is empty, else `command` run there — each word quoted for the remote
 * shell, so data is never interpreted by it — with its exit status. The user's SSH agent is
 * forwarded (`-A`, over a connection of its own) only when `forwardAgent` says so; otherwise
 * `ForwardAgent no` is explicit (it is also the ssh_config's default). Pure; throws nothing.
 */
export function sessionArgv(s: SshSettings, t: SshTarget, command: readonly string[], forwardAgent: boolean): string[] {
  // A shared master connection (ensureMaster) was opened without the agent, and a session
  // multiplexed over it cannot have one: a forwarding session connects on its own.
  const agent = forwardAgent ? ["-A", "-o", "ControlPath=none"] : ["-o", "ForwardAgent=no"];
  const login = `${t.user ?? "root"}@${t.host}`;
  if (command.length === 0) return ["-t", ...agent, ...sshOptions(s, t), login];
  return [...agent, ...sshOptions(s, t), login, "--", remoteCommandLine(command)];
}

/** Writes raptiformica's ssh_config when it changed; deploy calls it once before its concurrent slaves. */
export function writeSshConfig(s: SshSettings): void {
  makePrivateDir(s.stateDir);
  const text = renderSshConfig(s);
  const path = sshConfigPath(s);
  let current = "";
  try {
    current = readFileSync(path, "utf8");
  } catch {
    /* first use */
  }
  if (current !== text) {
    // Temp file and rename: concurrent commands (deploy) never read a half-written config.
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  }
}

/** Why an ssh run failed, in one paragraph naming the host, or undefined if it did not fail in ssh. */
export function sshFailure(t: SshTarget, s: SshSettings, out: Outcome): string | undefined {
  if (out.exitCode !== 255) return undefined;
  const err = out.stderr;
  const who = describeTarget(t);
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/.test(err)) {
    const name = t.port === 22 ? t.host : `[${t.host}]:${t.port}`;
    return (
      `The SSH host key of ${who} is not the one raptiformica recorded in ${s.knownHosts}. The machine may have been ` +
      `reinstalled — or someone is in the middle. If you know why it changed, forget the old key with ` +
      `\`ssh-keygen -R '${name}' -f ${s.knownHosts}\` and try again.`
    );
  }
  if (/Permission denied|Too many authentication failures/.test(err)) {
    return `SSH to ${who} was refused: none of your keys is accepted for ${t.user ?? "root"}. Add your public key to its ~/.ssh/authorized_keys (raptiformica connects as root by default).`;
  }
  if (/Connection refused|timed out|No route to host|Could not resolve hostname|Network is unreachable|Connection closed|port \d+: /.test(err) || err.trim() === "") {
    return `Cannot reach ${who} over SSH (${err.trim().split("\n").pop() || "no answer"}). Check that the host is up, that sshd listens on port ${t.port}, and that this machine can reach it.`;
  }
  return `SSH to ${who} failed: ${err.trim().split("\n").pop()}`;
}

/** Runs argv on the target; throws a UserError naming the host when ssh itself fails. */
export async function sshRun(s: SshSettings, t: SshTarget, remoteArgv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<Outcome> {
  writeSshConfig(s);
  await ensureMaster(s, t);
  const out = await run("ssh", sshArgv(s, t, remoteArgv), { timeoutMs: opts.timeoutMs ?? 120_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  if (out.failedToStart) throw new UserError(`Cannot run ssh (${out.failedToStart}). Install OpenSSH's client (apt-get install openssh-client).`);
  const failure = sshFailure(t, s, out);
  if (failure) throw new UserError(failure);
  return out;
}

/**
 * Runs argv on the target (each word quoted for the remote shell, as sshRun does) with its
 * stdout written to `onStdout` as it comes, not gathered: for commands that go on (a log
 * followed). Resolves once it ended with its exit code and its stderr (stdout empty), whatever
 * the code; `ssh` itself ending (Ctrl-C) ends it.
 * @throws UserError naming the host when ssh cannot be run or cannot reach it (sshFailure).
 */
export async function sshStream(s: SshSettings, t: SshTarget, remoteArgv: readonly string[], onStdout: (chunk: Buffer) => void): Promise<Outcome> {
  writeSshConfig(s);
  await ensureMaster(s, t);
  const child = spawn("ssh", sshArgv(s, t, remoteArgv), { stdio: ["ignore", "pipe", "pipe"] });
  const err: Buffer[] = [];
  child.stdout.on("data", onStdout);
  child.stderr.on("data", (b: Buffer) => err.push(b));
  const ended = await new Promise<number | Error>((resolve) => {
    child.on("error", resolve);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 + (signal === "SIGINT" ? 2 : 15) : 255)));
  });
  if (ended instanceof Error) throw new UserError(`Cannot run ssh (${ended.message}). Install OpenSSH's client (apt-get install openssh-client).`);
  const out: Outcome = { exitCode: ended, stdout: "", stderr: Buffer.concat(err).toString("utf8"), timedOut: false };
  const failure = sshFailure(t, s, out);
  if (failure) throw new UserError(failure);
  return out;
}

/**
 * The identities to offer: the agent's keys are always offered by ssh itself; besides those,
 * the user's usual key files; when there are none at all (no agent, no key), one raptiformica
 * makes once in its cache dir — and says so.
 */
export async function ensureIdentity(cacheSshDir: string, log: { info(m: string): void }, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const home = env["HOME"] ?? homedir();
  const usual = ["id_ed25519", "id_ecdsa", "id_rsa"].map((n) => join(home, ".ssh", n)).filter((p) => existsSync(p));
  const own = join(cacheSshDir, "id_ed25519");
  if (existsSync(own)) return [...usual, own];
  if (usual.length > 0) return usual;
  if (env["SSH_AUTH_SOCK"]) {
    const listed = await run("ssh-add", ["-L"], { timeoutMs: 5000 });
    if (listed.exitCode === 0 && listed.stdout.trim()) return [];
  }
  makePrivateDir(cacheSshDir);
  const gen = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "raptiformica", "-f", own], { timeoutMs: 30_000 });
  if (gen.exitCode !== 0) throw new UserError(`Could not create an SSH key in ${cacheSshDir}: ${gen.stderr.trim()}`);
  log.info(`You had no SSH key, so raptiformica made one: ${own}.pub — add it to root's ~/.ssh/authorized_keys on your machines.`);
  return [own];
}
