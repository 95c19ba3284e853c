import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { homedir } from "node:os";
import { join as joinPath } from "node:path";
import type { Context } from "./context.ts";
import { DEFAULT_CACHE_DIR } from "../config/paths.ts";
import { clusterIdOf, clusterLabel } from "../consensus/cluster-id.ts";
import { parseHostKey } from "../remote/known-hosts.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { describeTarget, sshOptions, sshRun, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { run } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { HOST_SELF_SCRIPT, decodeHostSelf } from "./cluster/wire.ts";
import { makePrivateDir } from "../util/private-dir.ts";

export interface JoinRequest {
  readonly member: SshTarget;
  readonly serverType: string;
  /** Port of this machine's sshd (the tunnel's far end). */
  readonly localSshPort: number;
  /** How the cluster reaches this machine; default: the address the member sees us come from. */
  readonly advertiseHost?: string;
}

/**
 * On the member: make sure raptiformica's own SSH key exists there (slave offers it), print
 * its public half, and the address this connection comes from (SSH_CONNECTION's first field).
 */
const MEMBER_KEY_SCRIPT =
  'set -e; d=.raptiformica.d/ssh; k="$d/id_ed25519"; if [ ! -f "$k" ]; then mkdir -p "$d"; chmod 700 "$d"; ' +
  'ssh-keygen -q -t ed25519 -N "" -C raptiformica -f "$k" >/dev/null; fi; cat "$k.pub"; echo "${SSH_CONNECTION%% *}"';

/** On the member: pin this machine's host key for the tunnel's address in raptiformica's known_hosts. */
const PIN_SCRIPT = 'set -e; kh=.raptiformica.d/known_hosts; touch "$kh"; chmod 600 "$kh"; ssh-keygen -R "$1" -f "$kh" >/dev/null 2>&1 || true; echo "$1 $2" >> "$kh"';

/**
 * `join`: this machine joins through a member. A reverse tunnel (ssh -R 0:…, so the member
 * picks a free port: no fixed 3222, two joins never clash) lets the member reach this machine's
 * sshd; the member's key is let in here, this machine's host key is pinned there, and the
 * member runs `slave` back through the tunnel — registering this machine under a real address
 * (the one it connects from, or --advertise-host), never 127.0.0.1.
 * @throws UserError when this machine's sshd is not there, this machine is in another cluster than the member, the member cannot be reached or give its key, the tunnel does not open, or the member's slave back fails; the member's key is let in only meanwhile.
 */
export async function joinCluster(ctx: Context, req: JoinRequest, progress: (text: string) => void): Promise<{ host: string; output: string }> {
  await ensureLocalSshd(req.localSshPort);
  const s = await sshSettings(ctx.paths, ctx.log);
  const m = req.member;
  await refuseOtherCluster(ctx, s, m);
  progress(`asking ${describeTarget(m)} for its key`);
  const keyOut = await sshRun(s, m, ["sh", "-c", MEMBER_KEY_SCRIPT], { timeoutMs: 60_000 });
  const [memberKey = "", seenAs = ""] = keyOut.stdout.trim().split("\n").map((l) => l.trim());
  if (keyOut.exitCode !== 0 || !parseHostKey(memberKey)) {
    throw new UserError(`Cannot get an SSH key from ${describeTarget(m)} (exit ${keyOut.exitCode}: ${keyOut.stderr.trim().split("\n").pop() ?? ""}).`);
  }
  const host = req.advertiseHost ?? seenAs;
  if (!host) throw new UserError(`${describeTarget(m)} did not say which address this machine connects from; pass --advertise-host.`);
  const grant = authorize(memberKey, new Date());

  progress("opening a reverse tunnel");
  let tunnel: { child: ChildProcess; port: number } | undefined;
  try {
    tunnel = await openTunnel(s, m, req.localSshPort);
    const ownKey = await localHostKey(req.localSshPort);
    const name = `[127.0.0.1]:${tunnel.port}`;
    const pinned = await sshRun(s, m, ["sh", "-c", PIN_SCRIPT, "sh", name, ownKey], { timeoutMs: 60_000 });
    if (pinned.exitCode !== 0) throw new UserError(`Cannot record this machine's host key on ${describeTarget(m)}: ${pinned.stderr.trim()}`);

    progress(`${describeTarget(m)} slaves this machine through the tunnel`);
    const rf = remoteCommand(ctx.config.snapshot().mapping);
    const argv = [rf, "slave", "127.0.0.1", "--port", String(tunnel.port), "--server-type", req.serverType, "--advertise-host", host, "--advertise-port", String(req.localSshPort)];
    const out = await sshRun(s, m, argv, { timeoutMs: 1_800_000 });
    if (out.exitCode !== 0) {
      throw new UserError(`${describeTarget(m)} could not slave this machine back through the tunnel (exit ${out.exitCode}): ${out.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    }
    return { host, output: out.stderr };
  } finally {
    tunnel?.child.kill("SIGTERM");
    revoke(grant);
  }
}

/**
 * This machine may already be a member of another cluster than the member's: refused before
 * anything changes (the member's `slave` back would refuse it too, but only after the tunnel
 * and the key). The member's cluster is what it says about itself (cluster/wire.ts
 * decodeHostSelf: its node's CA, else its config), as `slave` reads it; a member that cannot be
 * read is left to that later check.
 */
async function refuseOtherCluster(ctx: Context, s: SshSettings, m: SshTarget): Promise<void> {
  const out = await sshRun(s, m, ["sh", "-c", HOST_SELF_SCRIPT, "sh", DEFAULT_CACHE_DIR], { timeoutMs: 60_000 });
  if (out.exitCode !== 0) return;
  const mine = clusterIdOf(ctx.config.snapshot().mapping);
  const other = decodeHostSelf(out.stdout).clusterId;
  if (!mine || !other || mine === other) return;
  throw new UserError(
    `This machine is a member of ${clusterLabel(mine)}, but ${describeTarget(m)} is a member of ${clusterLabel(other)}; nothing was changed, here or there. ` +
      `To move this machine into ${clusterLabel(other)} on purpose, run \`raptiformica clean\` here first (it leaves ${clusterLabel(mine)}, keeping its mesh identity), then join again.`,
  );
}

async function ensureLocalSshd(port: number): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    const sock = connect({ host: "127.0.0.1", port, timeout: 3000 });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
    sock.once("timeout", () => {
      sock.destroy();
      resolve(false);
    });
  });
  if (!ok) {
    throw new UserError(
      `join needs this machine's sshd on 127.0.0.1:${port} (the member slaves this machine back through a tunnel to it). Install and start OpenSSH's server (apt-get install openssh-server), or pass --local-ssh-port.`,
    );
  }
}

/** How long the member's key may log in here at most, should `join` die before revoking it. */
const GRANT_MINUTES = 35;

/**
 * The authorized_keys line that lets the member slave this machine back, and nothing more:
 * only through the reverse tunnel (from 127.0.0.1 / ::1, where the tunnel comes out here), no
 * forwarding of ports, agents or X11, no pty, no user rc, and an expiry (`expiry-time`, local
 * time, OpenSSH 7.7+) a little past the slave's own 30-minute limit, so a `join` killed before
 * it could revoke the key leaves no lasting access. `tag` marks the line for {@link revoke}.
 * Pure: `now` is the clock.
 * Pure; throws nothing.
 */
export function grantLine(publicKey: string, tag: string, now: Date): string {
  const until = new Date(now.getTime() + GRANT_MINUTES * 60_000);
  const p2 = (n: number) => String(n).padStart(2, "0");
  const stamp = `${until.getFullYear()}${p2(until.getMonth() + 1)}${p2(until.getDate())}${p2(until.getHours())}${p2(until.getMinutes())}`;
  const [type, body] = publicKey.trim().split(/\s+/);
  return `restrict,from="127.0.0.1,::1",expiry-time="${stamp}" ${type} ${body} ${tag}`;
}

interface Grant {
  readonly file: string;
  readonly tag: string;
}

/**
 * Lets the member's key in as root here for the duration of the join ({@link grantLine}),
 * with a tag unique to this join; {@link revoke} removes exactly that line afterwards.
 */
function authorize(publicKey: string, now: Date): Grant {
  const dir = joinPath(homedir(), ".ssh");
  const file = joinPath(dir, "authorized_keys");
  makePrivateDir(dir);
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {
    /* none yet */
  }
  const tag = `raptiformica-join-${process.pid}-${now.getTime()}`;
  appendFileSync(file, `${current && !current.endsWith("\n") ? "\n" : ""}${grantLine(publicKey, tag, now)}\n`, { mode: 0o600 });
  return { file, tag };
}

/** Removes the line {@link authorize} added (and nothing else), atomically. */
function revoke(grant: Grant): void {
  let current: string;
  try {
    current = readFileSync(grant.file, "utf8");
  } catch {
    return;
  }
  const kept = current.split("\n").filter((l) => !l.trimEnd().endsWith(` ${grant.tag}`));
  const tmp = `${grant.file}.raptiformica-${process.pid}`;
  writeFileSync(tmp, kept.join("\n"), { mode: 0o600 });
  renameSync(tmp, grant.file);
}

/** This machine's host key as its sshd presents it (asked over loopback, so it is the real one). */
async function localHostKey(port: number): Promise<string> {
  const out = await run("ssh-keyscan", ["-T", "5", "-t", "ed25519", "-p", String(port), "127.0.0.1"], { timeoutMs: 15_000 });
  const line = out.stdout.split("\n").find((l) => / ssh-ed25519 /.test(l));
  const key = line ? parseHostKey(line.split(/\s+/).slice(1).join(" ")) : undefined;
  if (!key) throw new UserError(`Cannot read this machine's SSH host key from its sshd on 127.0.0.1:${port} (ssh-keyscan: ${out.stderr.trim() || "no ed25519 key"}).`);
  return key;
}

/** `ssh -N -R 0:127.0.0.1:PORT member`: the member allocates the port and ssh says which. */
function openTunnel(s: SshSettings, m: SshTarget, localPort: number): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "ssh",
      // Its own connection: through a shared master, ssh would hand the forward over and exit.
      [...sshOptions(s, m), "-N", "-o", "ControlPath=none", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO", "-R", `0:127.0.0.1:${localPort}`, `${m.user ?? "root"}@${m.host}`],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new UserError(`The reverse tunnel to ${describeTarget(m)} did not open within 20 s: ${stderr.trim() || "no answer"}`));
    }, 20_000);
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      const port = /Allocated port (\d+) for remote forward/.exec(stderr)?.[1];
      if (port) {
        clearTimeout(timer);
        resolve({ child, port: Number(port) });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new UserError(`The reverse tunnel to ${describeTarget(m)} closed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
    });
  });
}
