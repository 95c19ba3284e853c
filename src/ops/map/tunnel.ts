import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { clusterIdOf } from "../../consensus/cluster-id.ts";
import { resolveSettings } from "../../consensus/settings.ts";
import { memberSettings } from "../../node/last-good-settings.ts";
import { remoteCommand, sshSettings } from "../../remote/settings.ts";
import { describeTarget, sshOptions, writeSshConfig, type SshSettings, type SshTarget } from "../../remote/ssh.ts";
import { UserError, errorMessage } from "../../util/errors.ts";
import { checkAnswer, shownConfigClusterId } from "../cluster/same-cluster.ts";
import { isMember } from "../cluster/member.ts";
import { decodeFullConfig } from "../cluster/wire.ts";
import type { Context } from "../context.ts";
import { askedMembers, memberTargets, onFirstMember, NO_MEMBER_KNOWN } from "../via-member.ts";

/** The mesh map as `raptiformica map` opens it. */
export interface MapTunnel {
  /** The page, on this machine: `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** Whose map it is: the member (`root@host`), or "this member". */
  readonly member: string;
  /** Resolves when the tunnel ends by itself (ssh exited: the member went away), with why. Never for a member's own map. */
  readonly ended: Promise<string>;
  /** Closes the tunnel (ssh is ended); nothing for a member's own map. */
  close(): void;
}

/** How long a member's map may take to answer through a new tunnel (its agent may be starting). */
const ANSWER_MS = 15_000;

/**
 * `port` when it is free on 127.0.0.1 here, else one the system picks.
 * @throws UserError when `exact` and `port` is taken.
 */
export async function localPort(port: number, exact: boolean): Promise<number> {
  const tryListen = (p: number) =>
    new Promise<number | undefined>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(undefined));
      s.listen({ host: "127.0.0.1", port: p, exclusive: true }, () => {
        const got = (s.address() as AddressInfo).port;
        s.close(() => resolve(got));
      });
    });
  const got = await tryListen(port);
  if (got !== undefined) return got;
  if (exact) throw new UserError(`Local port ${port} is taken on this machine: pick another with \`raptiformica map --port N\`, or leave --port out to use a free one.`);
  const any = await tryListen(0);
  if (any === undefined) throw new UserError("No local port is free on 127.0.0.1 for the map's tunnel.");
  return any;
}

/**
 * Whether the map's page answers at `url` within `ms` (GET /, asked again every 300 ms while
 * the tunnel or the member's server is not ready yet). Resolves false when `gone` says the
 * tunnel died. Throws nothing.
 */
export async function pageAnswers(url: string, ms: number, gone: () => boolean = () => false): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !gone()) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request(url, { timeout: 3000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 && /^text\/html/.test(String(res.headers["content-type"])));
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      req.end();
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

/** The ssh argv (without `ssh`) of the map's tunnel: local 127.0.0.1:`local` to the member's 127.0.0.1:`remote`. Pure. */
export function tunnelArgv(s: SshSettings, t: SshTarget, local: number, remote: number): string[] {
  return [
    "-N",
    // Fail (exit 255) instead of running on without the forward when the local port is taken.
    "-o",
    "ExitOnForwardFailure=yes",
    // A connection of its own: a shared master ends its forwards on its own schedule.
    "-o",
    "ControlPath=none",
    "-L",
    `127.0.0.1:${local}:127.0.0.1:${remote}`,
    ...sshOptions(s, t),
    `${t.user ?? "root"}@${t.host}`,
  ];
}

/** Runs the tunnel; resolves once it is set up and the page answers through it, or with why not. */
async function tunnelTo(s: SshSettings, t: SshTarget, local: number, remote: number): Promise<{ child: ChildProcess; ended: Promise<string> } | { failed: string; portTaken: boolean }> {
  const child = spawn("ssh", tunnelArgv(s, t, local, remote), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (c: string) => (stderr = (stderr + c).slice(-4000)));
  let exited: string | undefined;
  const ended = new Promise<string>((resolve) => {
    child.on("error", (e) => resolve((exited = `ssh could not be started (${e.message}); install OpenSSH's client (apt-get install openssh-client)`)));
    child.on("exit", (code, signal) => resolve((exited = `ssh exited ${signal ?? code}${stderr.trim() ? `: ${stderr.trim().split("\n").pop()}` : ""}`)));
  });
  const ok = await pageAnswers(`http://127.0.0.1:${local}/`, ANSWER_MS, () => exited !== undefined);
  if (ok) return { child, ended };
  child.kill("SIGTERM");
  await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
  if (/Address already in use|cannot listen to port/i.test(stderr)) return { failed: `local port ${local} is taken`, portTaken: true };
  const why = exited ?? `its map does not answer on port ${remote} (no agent runs there, or one older than the map: \`raptiformica slave ${t.host}\` updates it)`;
  return { failed: why, portTaken: false };
}

/**
 * Opens the mesh map from this machine. On a member: its own map (its agent serves it on
 * 127.0.0.1), no tunnel. On an operator machine: the first of (at most three of) the members
 * its config names that is in this machine's cluster, answers over SSH and serves the map:
 * its map port is read from its config (`config show --json`, meshnet/map/port), then
 * `ssh -N -L 127.0.0.1:<local>:127.0.0.1:<map port>` to it, kept until `close`. The local port
 * is `o.port`, else the map port when it is free here, else any free one.
 * @throws UserError when no member is known, none could be reached or serves the map (each
 *   named with why), or the `o.port` asked for is taken.
 */
export async function openMapTunnel(ctx: Context, o: { port?: number } = {}): Promise<MapTunnel> {
  const { mapping } = ctx.config.snapshot();
  if (isMember(ctx)) {
    const port = memberSettings(mapping, ctx.node).mapPort;
    const url = `http://127.0.0.1:${port}/`;
    if (!(await pageAnswers(url, 3000))) throw new UserError(`This machine is a member, but its map does not answer at ${url}: is its agent running (\`raptiformica mesh\` starts it)?`);
    return { url, member: "this member", ended: new Promise<string>(() => undefined), close: () => undefined };
  }
  const targets = memberTargets(mapping);
  if (targets.length === 0) throw new UserError(NO_MEMBER_KNOWN);
  const settings = await sshSettings(ctx.paths, ctx.log);
  writeSshConfig(settings);
  const launcher = remoteCommand(mapping);
  const check = checkAnswer(clusterIdOf(mapping), (out) => (out.exitCode === 0 ? shownConfigClusterId(out.stdout) : undefined));
  const tried: string[] = [];
  const candidates = targets.slice(0, 3);
  for (const t of candidates) {
    const who = describeTarget(t);
    let remote: number;
    try {
      const { out } = await onFirstMember(async () => settings, [t], launcher, ["config", "show", "--json"], 1, check);
      if (out.exitCode !== 0) throw new Error(`\`config show --json\` exited ${out.exitCode}: ${out.stderr.trim().split("\n").pop() ?? ""}`);
      remote = resolveSettings(decodeFullConfig(out.stdout, who)).settings.mapPort;
    } catch (e) {
      tried.push(`${who}: ${errorMessage(e).split("\n")[0]}`);
      continue;
    }
    const local = await localPort(o.port ?? remote, o.port !== undefined);
    ctx.log.debug(`map: forwarding 127.0.0.1:${local} to ${who} 127.0.0.1:${remote}`);
    const r = await tunnelTo(settings, t, local, remote);
    if ("failed" in r) {
      if (r.portTaken && o.port !== undefined) throw new UserError(`Local port ${local} is taken on this machine: pick another with \`raptiformica map --port N\`, or leave --port out to use a free one.`);
      tried.push(`${who}: ${r.failed}`);
      continue;
    }
    const child = r.child;
    return {
      url: `http://127.0.0.1:${local}/`,
      member: who,
      ended: r.ended,
      close: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      },
    };
  }
  throw new UserError(`No member's map could be opened:\n  ${tried.join("\n  ")}\n${askedMembers(candidates.length, targets.length)}`);
}
