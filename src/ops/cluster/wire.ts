import { z } from "zod";
import type { FlatMapping } from "../../config/flatten.ts";
import { mappingProblem } from "../../config/store.ts";
import { clusterIdOf, clusterIdOfCaFile, type ClusterId } from "../../consensus/cluster-id.ts";
import { UserError } from "../../util/errors.ts";

/*
 * What a member's CLI prints for the `--json` commands an operator machine runs on it over SSH.
 * Declared once: the member renders through these types (cli/identity.ts, cli/members.ts,
 * cli/config.ts) and the operator decodes with these schemas (cluster/via-member.ts). Unknown
 * fields are dropped, not refused, so a member one version ahead can add some.
 */

const hexKey = z.string().regex(/^[0-9a-fA-F]{64}$/, "not a Yggdrasil public key (64 hex characters)");

/**
 * The cluster the answering machine is a member of (consensus/cluster-id.ts: SHA-256 of its
 * CA certificate), from its own CA file; absent on a machine that is no member, and from an
 * older raptiformica (whose answers are taken as before).
 */
const clusterId = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "not a cluster id (64 lowercase hex characters)")
  .transform((s) => s as ClusterId)
  .optional();

/** `raptiformica identity --json`: the machine's mesh identity. */
export const identityAnswer = z.object({
  publicKey: hexKey,
  meshAddress: z.string().min(1),
  // An older raptiformica printed neither: only the key and the address are relied on.
  /** "0.4" or "0.5" (mesh/yggdrasil/version.ts `Major`). */
  yggdrasilMajor: z.string().optional(),
  yggdrasilVersion: z.string().optional(),
  clusterId,
});
export type IdentityAnswer = z.infer<typeof identityAnswer>;

/** The role of a member in etcd (consensus/registry.ts `Role`): proxies are not etcd members. */
const role = z.enum(["leader", "voter", "learner", "proxy"]);

/** One row of `members`: alive = a live node record, failed = none, left = left on purpose. */
export const memberRow = z.object({
  name: z.string(),
  publicKey: z.string(),
  meshAddress: z.string(),
  host: z.string().optional(),
  status: z.enum(["alive", "failed", "left", "unknown"]),
  role: role.optional(),
  /** Seconds since the member's agent registered it. */
  uptimeSeconds: z.number().nonnegative().optional(),
});
export type MemberRow = Readonly<z.infer<typeof memberRow>>;
export type MemberStatus = MemberRow["status"];

/**
 * Something about the cluster as a whole an operator has to act on: a cluster setting whose
 * value cannot be used (the members run on their last good value meanwhile), a neighbour entry
 * the mesh cannot dial, a key in the KV no config can hold (every member skips it), an etcd
 * alarm (NOSPACE: the KV refuses writes until space is freed), or something that could not be
 * checked.
 */
export const clusterProblem = z.object({
  kind: z.enum(["setting", "neighbour", "key", "alarm", "unchecked"]),
  /** The config key (setting, neighbour, key), the member (alarm), or what could not be checked. */
  subject: z.string(),
  message: z.string(),
});
export type ClusterProblem = Readonly<z.infer<typeof clusterProblem>>;

/** An entry of the voter log (consensus/voters.ts): when, and what changed. */
const voterChange = z.object({ time: z.string(), change: z.string() });

/**
 * `raptiformica members --json`. Without quorum: `quorum` false, `error` says why and what to
 * do, `members` is what the member's cache knows (statuses unknown).
 */
export const membersAnswer = z.object({
  clusterId,
  quorum: z.boolean(),
  error: z.string().optional(),
  members: z.array(memberRow),
  voterChanges: z.array(voterChange).optional(),
  problems: z.array(clusterProblem).optional(),
});
export type MembersAnswer = z.infer<typeof membersAnswer>;

/**
 * One end of a link in `links`: a member (its key and the name `members` shows), or an end no
 * member's report names by key (a configured peer that is down and unknown: its remote address
 * as the name).
 */
export const linkEnd = z.object({
  publicKey: z.string().optional(),
  name: z.string(),
  /** For an end known by its address only. */
  remote: z.string().optional(),
});
export type LinkEnd = z.infer<typeof linkEnd>;

/** One end's view of a link, from its link report (consensus/links.ts): bytes as that end counts them. */
export const linkView = z.object({
  /** The reporting member's public key. */
  by: z.string(),
  up: z.boolean(),
  /** When the member read this from Yggdrasil, ms since the epoch (its clock). */
  reportedAt: z.number(),
  port: z.number().optional(),
  latencyMs: z.number().optional(),
  /** Received / sent by the reporting end. */
  rxBytes: z.number().optional(),
  txBytes: z.number().optional(),
  rxBytesPerSecond: z.number().optional(),
  txBytesPerSecond: z.number().optional(),
  uptimeSeconds: z.number().optional(),
  lastError: z.string().optional(),
  lastErrorAgeSeconds: z.number().optional(),
});
export type LinkView = z.infer<typeof linkView>;

/**
 * One link of `links`, shown once though both ends report it: `from` dialled `to` when
 * `dialled` (Yggdrasil 0.5 says which end did; two members that dial each other are two links),
 * else the version does not say (0.4) and `from` is the end whose name sorts first. `status`:
 * up or down as every reporting end says, "disputed" when they disagree (one report older than
 * the change). `views`: each reporting end's numbers, `from`'s first.
 */
export const linkRow = z.object({
  from: linkEnd,
  to: linkEnd,
  dialled: z.boolean(),
  status: z.enum(["up", "down", "disputed"]),
  views: z.array(linkView),
});
export type LinkRow = z.infer<typeof linkRow>;

/** A member as `links` knows it: `members`' name and status, and what its link report says of it. */
export const linkMember = z.object({
  name: z.string(),
  publicKey: z.string(),
  status: z.enum(["alive", "failed", "left", "unknown"]),
  /** Absent: no (valid) link report from it. */
  reportedAt: z.number().optional(),
  yggdrasilMajor: z.string().optional(),
  /** Yggdrasil 0.5: its parent in the spanning tree (its own key at the root). */
  treeParent: z.string().optional(),
});
export type LinkMember = z.infer<typeof linkMember>;

/** Something `links` could not use: a link report that is not one (named by its key). */
export const linkProblem = z.object({ subject: z.string(), message: z.string() });
export type LinkProblem = z.infer<typeof linkProblem>;

/**
 * `raptiformica links --json`: every member (as `members` names them), every link the members
 * report, and the reports that could not be read. Without quorum: `quorum` false, `error` says
 * why, and the members are what the cache knows (no links).
 */
export const linksAnswer = z.object({
  clusterId,
  quorum: z.boolean(),
  error: z.string().optional(),
  members: z.array(linkMember),
  links: z.array(linkRow),
  problems: z.array(linkProblem),
});
export type LinksAnswer = z.infer<typeof linksAnswer>;

/** `raptiformica config show --json`: key → value, every value a string. */
export const configAnswer = z.record(z.string(), z.string());
export type ConfigAnswer = z.infer<typeof configAnswer>;

/** The first few things zod found wrong, as one clause: `members.0.status: Invalid enum value …`. */
function issues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((i) => `${i.path.length > 0 ? i.path.join(".") : "the answer"}: ${i.message}`);
  return shown.join("; ") + (error.issues.length > 3 ? ` (and ${error.issues.length - 3} more)` : "");
}

/**
 * Decodes what member `who` printed for `command` (e.g. `members --json`) with `schema`.
 * @throws UserError naming the member and the command: when the text is not JSON, one that
 * quotes what it printed on stderr (or the start of stdout) and its exit code; when it is JSON
 * of another shape, one that names the fields and says how to bring the member to this version.
 */
export function decodeAnswer<S extends z.ZodTypeAny>(schema: S, answer: { stdout: string; stderr: string; exitCode: number }, who: string, command: string): z.infer<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.stdout);
  } catch {
    throw new UserError(`${who} answered \`${command}\` with something else (exit ${answer.exitCode}): ${answer.stderr.trim() || answer.stdout.slice(0, 200)}`);
  }
  const r = schema.safeParse(parsed);
  if (!r.success) {
    throw new UserError(
      `${who} answered \`${command}\` with JSON this version of raptiformica cannot read (${issues(r.error)}). ` +
        "It may run another version: `raptiformica slave HOST` brings it to this machine's version.",
    );
  }
  return r.data;
}

/** An issue of {@link configText} for text that is not JSON at all (decodeFullConfig says so apart). */
const NOT_JSON = "not JSON";

/**
 * A whole config as a machine states it, as JSON text of key → string: a member's
 * `config show --json`, or a host's own `mutable_config.json` (HOST_SELF_SCRIPT). Decoded into a
 * mapping that is usable as a config (config/store.ts mappingProblem: the issue names the first
 * key or value that is wrong, in the words the config uses).
 */
export const configText = z
  .string()
  .transform((text, ctx): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: NOT_JSON });
      return z.NEVER;
    }
  })
  .superRefine((parsed, ctx) => {
    const problem = mappingProblem(parsed);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  })
  .pipe(configAnswer);

/**
 * Decodes a member's whole shared config (`config show --json`, see {@link configText}).
 * @throws UserError naming `who` when it is not JSON or not usable as a config; nothing is
 *   changed here then.
 */
export function decodeFullConfig(text: string, who: string): FlatMapping {
  const r = configText.safeParse(text);
  if (r.success) return r.data;
  const problem = r.error.issues[0]?.message;
  if (problem === NOT_JSON) throw new UserError(`${who} answered \`config show --json\` with something that is not JSON. Nothing was changed here.`);
  throw new UserError(`The config ${who} reported is not usable: ${problem ?? "it is not a mapping of key to string"}. Nothing was changed here.`);
}

/**
 * What a host says about itself before anything is changed on it or here (`slave`, `join`):
 * read from its cache dir by HOST_SELF_SCRIPT, decoded by {@link decodeHostSelf}.
 */
export interface HostSelf {
  /**
   * It has a mutable config of a cluster (one naming a CA, or one that cannot be read, which is
   * never overwritten): a member (or one was), so its cluster knowledge wins.
   */
  readonly hasConfig: boolean;
  /** Its mutable config, when it has a usable one ({@link configText}). */
  readonly mapping?: FlatMapping;
  /**
   * The cluster it is a member of: from its node's CA certificate (which stays when its config
   * is moved away), else from its config's CA.
   */
  readonly clusterId?: ClusterId;
}

/**
 * `sh -c HOST_SELF_SCRIPT sh CACHE_DIR` prints what a host says about itself: `ca`, its node's
 * CA certificate and `end-ca` when it has a readable one; then `config` and its mutable config,
 * or `none`. Needs only a POSIX shell (it runs before anything is installed there).
 */
export const HOST_SELF_SCRIPT =
  'if [ -r "$1/node/etcd/tls/ca.crt" ]; then echo ca; cat "$1/node/etcd/tls/ca.crt"; echo; echo end-ca; fi; ' +
  'if [ -e "$1/mutable_config.json" ]; then echo config; cat "$1/mutable_config.json"; else echo none; fi';

/**
 * Decodes what HOST_SELF_SCRIPT printed (`text`) into {@link HostSelf}. Throws nothing: what
 * cannot be read says nothing (a CA file without a certificate names no cluster; a config that
 * is not usable is kept, `hasConfig`, but names no cluster).
 */
export function decodeHostSelf(text: string): HostSelf {
  const lines = text.split("\n");
  let caId: ClusterId | undefined;
  if (lines[0]?.trim() === "ca") {
    const end = lines.findIndex((l) => l.trim() === "end-ca");
    caId = clusterIdOfCaFile(lines.slice(1, end < 0 ? undefined : end).join("\n"));
    lines.splice(0, end < 0 ? lines.length : end + 1);
  }
  const fromCa = caId ? { clusterId: caId } : {};
  const [marker = "", ...json] = lines;
  if (marker.trim() !== "config") return { hasConfig: false, ...fromCa };
  const config = configText.safeParse(json.join("\n"));
  if (!config.success) return { hasConfig: true, ...fromCa };
  const own = clusterIdOf(config.data);
  const id = caId ?? own;
  return { hasConfig: own !== undefined, mapping: config.data, ...(id ? { clusterId: id } : {}) };
}
