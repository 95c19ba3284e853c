import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { KEY_ROOT, keysUnder, type FlatMapping } from "../config/flatten.ts";
import { clusterIdOf, otherClusterIdProblem } from "../consensus/cluster-id.ts";
import { withoutCa } from "../consensus/pki.ts";
import { clusterYggdrasilMajor, parseNeighbours } from "../mesh/neighbours.ts";
import { REMOTE_CACHE_DIR, REMOTE_INSTALL_DIR, remoteCommand, sshSettings } from "../remote/settings.ts";
import { describeTarget, sshRun, type SshSettings, type SshTarget } from "../remote/ssh.ts";
import { pushFile, pushTree } from "../remote/transfer.ts";
import { LAUNCHER_PATH, installLauncher } from "../remote/launcher.ts";
import { UserError } from "../util/errors.ts";
import { cacheSource } from "./artifacts.ts";
import type { Context } from "./context.ts";
import { fireLocalHook } from "./local-hook.ts";
import { storeLearned } from "./learn.ts";
import { memberTargets } from "./via-member.ts";
import { LocalCluster } from "./cluster/local.ts";
import { isMember } from "./cluster/member.ts";
import { MemberCli, lastLines } from "./cluster/member-cli.ts";
import { SshNodeChannel } from "./cluster/node-channel.ts";
import { HOST_SELF_SCRIPT, decodeHostSelf, type HostSelf } from "./cluster/wire.ts";
import { assimilate, registerThrough, registerViaMembers, type Registrar } from "./assimilate.ts";

/** The four flags `spawn`, `slave` and `deploy` share with the original (`--no-provision` …). */
export interface SlaveFlags {
  provision: boolean;
  assimilate: boolean;
  afterAssimilate: boolean;
  afterMesh: boolean;
}

export interface SlaveRequest {
  readonly target: SshTarget;
  readonly serverType: string;
  readonly flags: SlaveFlags;
  /** Set by `spawn`: the instance id, kept in the neighbour entry so `prune` can find it. */
  readonly uuid?: string;
  /**
   * How the cluster reaches the machine, when that is not how this machine does (`join`
   * slaves through a reverse tunnel on 127.0.0.1): recorded in its neighbour entry.
   */
  readonly advertise?: { readonly host: string; readonly port: number };
}

export interface SlaveResult {
  readonly publicKey?: string;
  readonly meshAddress?: string;
  readonly role?: string;
}

/** Steps a progress display can show; `detail` is human text. */
export type SlaveProgress = (step: SlaveStep, detail?: string) => void;
export type SlaveStep = "connect" | "upload" | "provision" | "after_slave" | "register" | "mesh" | "after_assimilate" | "done";

/** What one round trip tells about the host before anything is changed on it. */
interface HostFacts extends HostSelf {
  readonly os: string;
  readonly commands: ReadonlySet<string>;
}

/** `uname`, the commands slave relies on, then what the host says about itself (cluster/wire.ts). */
const FACTS_SCRIPT =
  'uname -s; for c in rsync tar node yggdrasil etcd apt-get pacman dnf apk; do command -v "$c" >/dev/null 2>&1 && printf "%s " "$c"; done; echo; ' + HOST_SELF_SCRIPT;

/** Marks of a remote install dir or cache dir made before directories carried the marker. */
const INSTALL_LEGACY_MARKS = ["dist/raptiformica.mjs", "bin/raptiformica"];
const CACHE_LEGACY_MARKS = ["mutable_config.json", "node", "modules", "last_advertised", "known_hosts"];

/**
 * `slave`: push raptiformica and the cluster's knowledge to a root-SSH host, provision it, and
 * make it a member. Safe to run again on a member: every step converges (it is the update path).
 * @throws UserError naming the host for every step that fails (SSH, another cluster, no Linux, no rsync/tar, provisioning, registration, mesh); a host of another cluster is refused before anything changes.
 * @throws ClusterUnavailable when, on a member, its KV does not answer the registration in time.
 */
export async function slaveMachine(ctx: Context, req: SlaveRequest, progress: SlaveProgress = () => undefined): Promise<SlaveResult> {
  const settings = await sshSettings(ctx.paths, ctx.log);
  const t = req.target;
  const who = describeTarget(t);
  const mapping = ctx.config.snapshot().mapping;
  const rfRemote = remoteCommand(mapping);
  const remoteInstall = REMOTE_INSTALL_DIR;

  progress("connect");
  const facts = await hostFacts(settings, t);
  // A member of another cluster is refused before anything changes there or here.
  const otherCluster = otherClusterIdProblem(clusterIdOf(mapping), facts.clusterId, who);
  if (otherCluster) throw new UserError(otherCluster);
  if (facts.os !== "Linux") {
    throw new UserError(`${who} runs ${facts.os || "an unknown system"}; raptiformica members must run Linux (with apt-get, pacman, dnf or apk).`);
  }
  if (!facts.commands.has("tar") && !facts.commands.has("rsync")) {
    throw new UserError(`${who} has neither rsync nor tar, so raptiformica cannot be copied there. Install one of them and run slave again.`);
  }

  progress("upload", `raptiformica → ${remoteInstall}`);
  const bundle = join(ctx.installDir, "dist", "raptiformica.mjs");
  if (!existsSync(bundle)) {
    throw new UserError(`${bundle} does not exist, so there is nothing to copy to ${who}. Build it first: \`npm run build\` in ${ctx.installDir}.`);
  }
  const rsync = facts.commands.has("rsync");
  const install = { from: ctx.installDir, entries: ["bin", "dist", "modules", "package.json"], to: remoteInstall, exclude: [".vagrant"], legacyMarks: INSTALL_LEGACY_MARKS };
  await pushTree(settings, t, install, rsync);
  if (existsSync(ctx.paths.modules)) {
    await pushTree(settings, t, { from: ctx.paths.root, entries: ["modules"], to: REMOTE_CACHE_DIR, legacyMarks: CACHE_LEGACY_MARKS }, rsync);
  }
  // A member keeps its own (cluster-synced) config; a new machine gets ours, without the
  // cluster CA's private key: only a machine that becomes a member (assimilate) gets that.
  await pushFile(settings, t, `${REMOTE_CACHE_DIR}/mutable_config.json`, `${JSON.stringify(withoutCa(mapping), null, 2)}\n`, { onlyIfAbsent: true });

  if (req.flags.provision) {
    await provision(ctx, settings, t, mapping, req.serverType, remoteInstall, rsync, progress);
  } else if (!facts.commands.has("node")) {
    throw new UserError(`${who} has no node, and --no-provision skips installing it. Drop --no-provision, or use a machine (image) that has node 18+, yggdrasil and etcd.`);
  }
  const version = await sshRun(settings, t, [rfRemote, "--version"], { timeoutMs: 60_000 });
  if (version.exitCode !== 0) {
    throw new UserError(`raptiformica does not run on ${who} (${rfRemote} --version exited ${version.exitCode}: ${lastLines(version.stderr)}). It needs node 18 or newer there.`);
  }
  await putOnPath(ctx, settings, t);

  progress("after_slave");
  await fireLocalHook(ctx, "after_slave", { host: t.host, port: t.port, serverType: req.serverType, ...(req.uuid ? { uuid: req.uuid } : {}) });
  if (!req.flags.assimilate) return {};

  const isOurMember = facts.clusterId !== undefined && facts.clusterId === clusterIdOf(mapping);
  const result = await assimilateHost(ctx, settings, req, rfRemote, facts.hasConfig, isOurMember, progress);
  if (req.flags.afterAssimilate) {
    progress("after_assimilate");
    await fireLocalHook(ctx, "after_assimilate", { host: t.host, port: t.port, ...result });
  }
  progress("done");
  return result;
}

/**
 * `raptiformica` becomes a command on the machine (README, "What runs on a member"): a launcher
 * in /usr/local/bin, or nothing when its login environment already has the install on PATH. A
 * file there that is not ours stays as it is, and so does the machine when the launcher cannot
 * be written: both are said, neither stops the slave (the install itself works).
 */
async function putOnPath(ctx: Context, s: SshSettings, t: SshTarget): Promise<void> {
  const who = describeTarget(t);
  try {
    const done = await installLauncher(s, t);
    if (done === "foreign") {
      ctx.log.warn(
        `${LAUNCHER_PATH} on ${who} is not a launcher raptiformica wrote, so it was left as it is: typing \`raptiformica\` there runs that file, ` +
          `not this install. Run ${REMOTE_INSTALL_DIR}/bin/raptiformica there instead, or move that file away and run slave again.`,
      );
    }
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    ctx.log.warn(`${e.message} \`raptiformica\` is not a command there; run ${REMOTE_INSTALL_DIR}/bin/raptiformica instead.`);
  }
}

async function hostFacts(s: SshSettings, t: SshTarget): Promise<HostFacts> {
  const out = await sshRun(s, t, ["sh", "-c", FACTS_SCRIPT, "sh", REMOTE_CACHE_DIR], { timeoutMs: 60_000 });
  if (out.exitCode !== 0) throw new UserError(`Cannot inspect ${describeTarget(t)}: \`sh\` failed there (${lastLines(out.stderr)}).`);
  const [os = "", commands = "", ...rest] = out.stdout.split("\n");
  return { os: os.trim(), commands: new Set(commands.trim().split(/\s+/).filter(Boolean)), ...decodeHostSelf(rest.join("\n")) };
}

/**
 * Runs the server type's provisioners in name order: a provisioner with a `source` gets its
 * checkout from this machine's artifact cache (so private repositories reachable only from
 * here work) in /usr/etc/<name>; the bootstrap runs there (or in the install dir without a
 * source). Bootstraps are shell by contract; they get RAPTIFORMICA_YGGDRASIL_MAJOR (0.4 or 0.5)
 * when the cluster's members record one major.
 */
async function provision(
  ctx: Context,
  s: SshSettings,
  t: SshTarget,
  mapping: FlatMapping,
  serverType: string,
  remoteInstall: string,
  rsync: boolean,
  progress: SlaveProgress,
): Promise<void> {
  for (const p of provisioners(mapping, serverType)) {
    let dir = remoteInstall;
    if (p.source) {
      progress("provision", `${p.name}: fetching ${p.source}`);
      const local = await cacheSource(ctx.paths.artifacts, p.name, p.source);
      dir = `/usr/etc/${p.name}`;
      // The checkout's own entries into /usr/etc/<name> (marked as raptiformica's, so a later
      // push may replace them); a copy pushed before the marker existed is a git checkout.
      await pushTree(s, t, { from: local, entries: readdirSync(local), to: dir, legacyMarks: [".git"] }, rsync);
    }
    if (!p.bootstrap) continue;
    progress("provision", `${p.name}: running its bootstrap`);
    // The bootstrap learns the Yggdrasil major the cluster runs (when it has one), so a host
    // joining a 0.4 cluster is not upgraded out of its mesh (modules/server/headless/bootstrap.sh).
    await runBootstrap(ctx, s, t, { ...p, bootstrap: p.bootstrap, dir }, serverType, clusterYggdrasilMajor(mapping) ?? requestedMajor());
  }
}

/**
 * Runs one provisioner's bootstrap (shell by contract) as root on `t`, in `p.dir`, with
 * RAPTIFORMICA_YGGDRASIL_MAJOR set to `major` when given. `slave` runs it after pushing the
 * provisioner's files; `migrate-mesh` runs it again where they already are.
 * @throws UserError naming the host, server type and provisioner when it exits non-zero or times out (30 min).
 */
export async function runBootstrap(
  ctx: Context,
  s: SshSettings,
  t: SshTarget,
  p: { readonly name: string; readonly bootstrap: string; readonly dir: string },
  serverType: string,
  major: "0.4" | "0.5" | undefined,
): Promise<void> {
  const script = '[ -z "$3" ] || export RAPTIFORMICA_YGGDRASIL_MAJOR="$3"; cd "$1" && eval "$2"';
  const out = await sshRun(s, t, ["sh", "-c", script, "sh", p.dir, p.bootstrap, major ?? ""], { timeoutMs: 1_800_000 });
  if (ctx.log.verbose && out.stdout.trim()) ctx.log.debug(out.stdout.trimEnd());
  if (out.exitCode !== 0) {
    throw new UserError(
      `Provisioning ${describeTarget(t)} failed: server type ${serverType}, provisioner ${p.name} exited ${out.exitCode}${out.timedOut ? " (timed out)" : ""}: ${lastLines(out.stderr || out.stdout, 5)}`,
    );
  }
}

/**
 * The Yggdrasil major the operator asks a new cluster to run (RAPTIFORMICA_YGGDRASIL_MAJOR in
 * this process's environment: 0.4 to start a cluster that peers with 0.4 machines), used only
 * while the cluster records none. Undefined when unset.
 * @throws UserError when it is set to anything but 0.4 or 0.5.
 */
export function requestedMajor(env: NodeJS.ProcessEnv = process.env): "0.4" | "0.5" | undefined {
  const v = env["RAPTIFORMICA_YGGDRASIL_MAJOR"];
  if (v === undefined || v === "") return undefined;
  if (v === "0.4" || v === "0.5") return v;
  throw new UserError(`RAPTIFORMICA_YGGDRASIL_MAJOR is "${v}" in this environment: give 0.4 (a new cluster on Yggdrasil 0.4) or 0.5, or unset it. A cluster that already records its major keeps it; \`raptiformica migrate-mesh\` moves it to 0.5.`);
}

interface Provisioner {
  readonly name: string;
  readonly source?: string;
  readonly bootstrap?: string;
}

/** The provisioners of `serverType` in the config, in name order, with their source and bootstrap. Pure; throws nothing. */
export function provisioners(mapping: FlatMapping, serverType: string): Provisioner[] {
  const prefix = `${KEY_ROOT}/server/${serverType}/`;
  const names = new Set(keysUnder(mapping, prefix).map((k) => k.slice(prefix.length).split("/")[0] as string));
  return [...names].sort().map((name) => {
    const source = mapping[`${prefix}${name}/source`];
    const bootstrap = mapping[`${prefix}${name}/bootstrap`];
    return { name, ...(source ? { source } : {}), ...(bootstrap ? { bootstrap } : {}) };
  });
}

/**
 * Makes the provisioned host a member through the shared sequence (ops/assimilate.ts): a
 * member registers its key in the cluster (so every member accepts it and those that can reach
 * it dial it; the new node dials out to the others itself, which is what makes NAT work), it
 * gets the cluster's current knowledge and runs `mesh`; then this machine learns the result.
 */
async function assimilateHost(
  ctx: Context,
  s: SshSettings,
  req: SlaveRequest,
  rfRemote: string,
  hadConfig: boolean,
  isOurMember: boolean,
  progress: SlaveProgress,
): Promise<SlaveResult> {
  const t = req.target;
  const who = describeTarget(t);
  const channel = new SshNodeChannel(s, t, rfRemote);
  const reach = req.advertise ?? { host: t.host, port: t.port };

  const here = isMember(ctx);
  const own = ctx.config.snapshot().mapping;
  const others = memberTargets(own).filter((m) => !(m.host === reach.host && m.port === reach.port));
  // A member being slaved again (the update path) can register itself when no other member
  // answers (the operator's copy may name members long gone).
  const members = isOurMember ? [...others, t] : others;
  // One path, through the Cluster interface: on a member (e.g. the far end of `join`) its own
  // KV (LocalCluster); from an operator machine the first of `members` that answers over SSH
  // (ViaMember); the first node of a new cluster needs none. The node gets the freshest
  // knowledge (the new neighbour included, and the CA it needs to join), unless it has its own.
  const register: Registrar = here
    ? registerThrough(new LocalCluster(ctx), who, own)
    : members.length > 0
      ? registerViaMembers(members.map((m) => new SshNodeChannel(s, m, rfRemote)), { newcomer: who, mine: clusterIdOf(own), fallback: own, log: ctx.log })
      : async () => own;
  const id = await assimilate({ node: channel, reach, register, keepOwnConfig: hadConfig, afterMesh: req.flags.afterMesh, ...(req.uuid ? { uuid: req.uuid } : {}), progress });

  // Learn what the cluster knows now, so later commands from here reach its members (a
  // member's own agent keeps its copy in step already).
  // Data only: code keys stay this machine's own (README, "Trust model").
  const node = new MemberCli(channel);
  const learned = await node.config();
  if (!here) await storeLearned(ctx, learned, who);
  const me = parseNeighbours(learned).find((n) => n.publicKey === id.publicKey);
  // The role is for the report only: a busy cluster that cannot answer `members` right now
  // does not make the slave fail.
  let role: string | undefined;
  try {
    role = (await node.members()).members.find((m) => m.meshAddress === id.meshAddress)?.role;
  } catch {
    role = undefined;
  }
  return { publicKey: id.publicKey, meshAddress: me?.meshAddress ?? id.meshAddress, ...(role ? { role } : {}) };
}
