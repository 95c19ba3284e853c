import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import { describeHostProblem, parseHost } from "./host.ts";
import { addressForKey } from "./yggdrasil/address.ts";
import { assertSameMajor } from "./yggdrasil/version.ts";

export type YggdrasilMajor = "0.4" | "0.5";

/**
 * One machine of the cluster as recorded in the shared config
 * (`raptiformica/meshnet/neighbours/<public key>/<field>`, the original's layout with
 * Yggdrasil fields instead of CJDNS ones).
 */
export interface Neighbour {
  readonly publicKey: string;
  readonly meshAddress: string;
  /** Address other machines reach it on (advertised); absent for a node nobody can dial. */
  readonly host?: string;
  readonly sshPort: number;
  readonly yggdrasilPort: number;
  readonly yggdrasilMajor?: YggdrasilMajor;
  readonly name?: string;
  /** Compute-type instance id, for nodes started with `spawn`. */
  readonly uuid?: string;
  /** Set when the node left on purpose (`clean`). */
  readonly left?: boolean;
}

export const NEIGHBOURS_PREFIX = `${KEY_ROOT}/meshnet/neighbours/`;

/**
 * The Yggdrasil major the cluster runs from now on, when it was chosen on purpose: written by
 * `migrate-mesh` (ops/migrate-mesh.ts) at the moment the members switch. Absent in a cluster
 * that never migrated: its major is then the one its members record (clusterYggdrasilMajor).
 */
export const MESH_MAJOR_KEY = `${KEY_ROOT}/meshnet/yggdrasil/major`;

/** The problem with a value of MESH_MAJOR_KEY, if any (the rule `config set` and the agent share). */
export function meshMajorProblem(value: string | undefined): string | undefined {
  if (value === undefined || value === "0.4" || value === "0.5") return undefined;
  return `Config key ${MESH_MAJOR_KEY} is "${value}", but it must be 0.4 or 0.5 (the Yggdrasil major every member runs).`;
}

/** MESH_MAJOR_KEY of `mapping` when it holds a usable value (see meshMajorProblem), else undefined. */
export function targetMeshMajor(mapping: FlatMapping): YggdrasilMajor | undefined {
  const v = mapping[MESH_MAJOR_KEY];
  return v === "0.4" || v === "0.5" ? v : undefined;
}

export function neighbourPrefix(publicKey: string): string {
  return `${NEIGHBOURS_PREFIX}${publicKey}/`;
}

/** A field of a neighbour entry in the KV that cannot be used as it is; the entry's other fields still are. */
export interface NeighbourProblem {
  readonly publicKey: string;
  /** The full KV key, e.g. `raptiformica/meshnet/neighbours/<key>/host`. */
  readonly key: string;
  readonly value: string;
  /** What is wrong and what was done about it, as one sentence. */
  readonly message: string;
}

function portField(f: Record<string, string>, field: string, fallback: number): number | undefined {
  const raw = f[field];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  return /^\d+$/.test(raw) && n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * The neighbour entries of a mapping (the cluster KV or a local copy), each field checked where
 * it enters with the rule that later uses it: a host goes through `parseHost` (and is stored in
 * its normalized form), ports must be TCP ports. A bad field does not take the entry or the other
 * neighbours down: a bad host or Yggdrasil port leaves the neighbour without a host (not dialled;
 * its key is still allowed in, so it can dial us), a bad SSH port falls back to 22. Each such
 * field is returned as a problem for the caller to warn about. Entries without a mesh address or
 * whose id is not a public key are incomplete or foreign and are left out silently, as before.
 */
export function readNeighbours(mapping: FlatMapping): NeighbourReading {
  if (!Object.isFrozen(mapping)) return readNeighboursNow(mapping);
  const hit = readFor.get(mapping);
  if (hit) return hit;
  const reading = readNeighboursNow(mapping);
  readFor.set(mapping, reading);
  return reading;
}

/** What readNeighbours found: shared between callers of one mapping, so never to be changed. */
export interface NeighbourReading {
  readonly neighbours: readonly Neighbour[];
  readonly problems: readonly NeighbourProblem[];
}

/**
 * readNeighbours' answers by frozen mapping: an agent reads the neighbours of one config copy
 * four times a tick (consensus, mesh names, its own entry, the peers to dial), and a copy holds
 * every member's entry (9 ms a reading at 1 000 members). The config view's copies are frozen
 * (a change makes a new one); a mapping that is not may still be changed in place (the
 * read-modify-write callbacks do) and is read afresh each time.
 */
const readFor = new WeakMap<FlatMapping, NeighbourReading>();

function readNeighboursNow(mapping: FlatMapping): NeighbourReading {
  const fields = new Map<string, Record<string, string>>();
  for (const [key, value] of Object.entries(mapping)) {
    if (!key.startsWith(NEIGHBOURS_PREFIX)) continue;
    const [id, field, ...rest] = key.slice(NEIGHBOURS_PREFIX.length).split("/");
    if (!id || !field || rest.length > 0) continue;
    const entry = fields.get(id) ?? {};
    entry[field] = value;
    fields.set(id, entry);
  }
  const neighbours: Neighbour[] = [];
  const problems: NeighbourProblem[] = [];
  for (const [id, f] of fields) {
    const meshAddress = f["mesh_address"];
    const problem = (field: string, message: string) =>
      problems.push({ publicKey: id, key: `${neighbourPrefix(id)}${field}`, value: f[field] as string, message });
    if (!/^[0-9a-f]{64}$/.test(id)) {
      // Not a neighbour: its key must be a Yggdrasil public key. Said once, on its first field.
      const first = Object.keys(f).sort()[0] as string;
      problem(first, `${JSON.stringify(id)} is not a neighbour's key (a Yggdrasil public key: 64 lowercase hex digits); this entry is ignored`);
      continue;
    }
    const major = f["yggdrasil_major"];
    let host: string | undefined;
    if (f["host"]) {
      const parsed = parseHost(f["host"]);
      if (parsed.ok) host = parsed.value.value;
      else problem("host", `${describeHostProblem(f["host"], parsed.error, "in the entry's ssh_port or yggdrasil_port")}; this neighbour is not dialled`);
    }
    const yggdrasilPort = portField(f, "yggdrasil_port", 4863);
    if (yggdrasilPort === undefined) {
      problem("yggdrasil_port", `${JSON.stringify(f["yggdrasil_port"])} is not a TCP port (1-65535); this neighbour is not dialled`);
      host = undefined;
    }
    const sshPort = portField(f, "ssh_port", 22);
    if (sshPort === undefined) problem("ssh_port", `${JSON.stringify(f["ssh_port"])} is not a TCP port (1-65535); using 22`);
    // Fields are checked above even while the entry is incomplete (no mesh address yet): a bad
    // host is refused where it enters, not only once the entry is complete.
    if (!meshAddress) continue;
    neighbours.push({
      publicKey: id,
      meshAddress,
      ...(host ? { host } : {}),
      sshPort: sshPort ?? 22,
      yggdrasilPort: yggdrasilPort ?? 4863,
      ...(major === "0.4" || major === "0.5" ? { yggdrasilMajor: major } : {}),
      ...(f["name"] ? { name: f["name"] } : {}),
      ...(f["uuid"] ? { uuid: f["uuid"] } : {}),
      ...(f["left"] === "true" ? { left: true } : {}),
    });
  }
  return { neighbours: neighbours.sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1)), problems };
}

/** `readNeighbours` without the problems, for callers that only read (the agent warns about them). */
export function parseNeighbours(mapping: FlatMapping): readonly Neighbour[] {
  return readNeighbours(mapping).neighbours;
}

/** One line per problem, for a warning: `<key> = <value>: <why>`. */
export function describeNeighbourProblem(p: NeighbourProblem): string {
  return (
    `neighbour entry ${p.key}: ${p.message}. ` +
    `Fix it: \`raptiformica advertise HOST --port PORT\` on that machine, or \`raptiformica inject HOST --key ${p.publicKey}\` on a member.`
  );
}

export function neighbourMapping(n: Neighbour): FlatMapping {
  const p = neighbourPrefix(n.publicKey);
  const m: FlatMapping = {
    [`${p}public_key`]: n.publicKey,
    [`${p}mesh_address`]: n.meshAddress,
    [`${p}ssh_port`]: String(n.sshPort),
    [`${p}yggdrasil_port`]: String(n.yggdrasilPort),
  };
  if (n.host) m[`${p}host`] = n.host;
  if (n.yggdrasilMajor) m[`${p}yggdrasil_major`] = n.yggdrasilMajor;
  if (n.name) m[`${p}name`] = n.name;
  if (n.uuid) m[`${p}uuid`] = n.uuid;
  if (n.left) m[`${p}left`] = "true";
  return m;
}

/** Replaces every key of that neighbour (fields that disappeared are removed). */
export function withNeighbour(mapping: FlatMapping, n: Neighbour): FlatMapping {
  const p = neighbourPrefix(n.publicKey);
  for (const k of Object.keys(mapping)) if (k.startsWith(p)) delete mapping[k];
  return Object.assign(mapping, neighbourMapping(n));
}

/** Who a machine is and how it is reached, as another machine registers it (`inject`, `slave`, `spawn`). */
export interface Registration {
  readonly publicKey: string;
  /** In the form `parseHost` returns: the form members dial, and compare hosts in. */
  readonly host: string;
  readonly sshPort: number;
  readonly yggdrasilPort: number;
}

/**
 * A copy of `mapping` with the machine `r` registered as a neighbour: its entry under its
 * public key, the mesh address derived from that key, its host and ports; what the entry had
 * beside those (name, major, instance id) is kept, but not a `left` mark: a machine that left
 * (`clean`) and is registered again is coming back, and while marked left every member kept its
 * key out of Yggdrasil — it could not reach the KV to clear the mark itself (the soak,
 * bench/soak.ts, saw such rejoins take up to 70 s, against 10 s after an eviction). Like the
 * original, a different machine registered under the same host is dropped first
 * ({@link withoutNeighbours}): the new one replaced it there. Pure; throws nothing.
 */
export function withRegisteredNeighbour(mapping: FlatMapping, r: Registration): FlatMapping {
  const replaced = parseNeighbours(mapping).filter((n) => n.host === r.host && n.publicKey !== r.publicKey);
  const m = withoutNeighbours(mapping, replaced.map((n) => n.publicKey));
  const { left: _left, ...current } = parseNeighbours(m).find((n) => n.publicKey === r.publicKey) ?? {};
  return withNeighbour(m, { ...current, publicKey: r.publicKey, meshAddress: addressForKey(r.publicKey), host: r.host, sshPort: r.sshPort, yggdrasilPort: r.yggdrasilPort });
}

/**
 * A copy of `mapping` without any key of the neighbours with these public keys (a key that only
 * starts like one of them stays). The one rule for dropping neighbour entries: eviction
 * (consensus/gone.ts), `prune`, re-registration under a host (withRegisteredNeighbour).
 */
export function withoutNeighbours(mapping: FlatMapping, publicKeys: readonly string[]): FlatMapping {
  const prefixes = publicKeys.map(neighbourPrefix);
  return Object.fromEntries(Object.entries(mapping).filter(([k]) => !prefixes.some((p) => k.startsWith(p))));
}

/** Short, stable member name used for etcd and in tables. */
export function memberName(publicKey: string): string {
  return publicKey.slice(0, 16);
}

/**
 * This node's own entry, as it registers itself: how it is reached comes from `advertise`
 * (else what was recorded before); a spawned node keeps its instance id; an active node is
 * never `left`.
 */
export function selfNeighbour(
  current: Neighbour | undefined,
  me: { publicKey: string; meshAddress: string; yggdrasilPort: number; yggdrasilMajor: YggdrasilMajor; name: string },
  advertised: { host: string; port: number } | undefined,
): Neighbour {
  const host = advertised?.host ?? current?.host;
  return {
    ...me,
    ...(host ? { host } : {}),
    sshPort: advertised?.port ?? current?.sshPort ?? 22,
    ...(current?.uuid ? { uuid: current.uuid } : {}),
  };
}

/** Whether two entries store the same keys and values. */
export function sameNeighbour(a: Neighbour | undefined, b: Neighbour): boolean {
  return a !== undefined && JSON.stringify(neighbourMapping(a)) === JSON.stringify(neighbourMapping(b));
}

/**
 * Why this node may not mesh with the others (a mix of Yggdrasil 0.4 and 0.5), if so. In a
 * cluster that chose its major (MESH_MAJOR_KEY, set by `migrate-mesh`) that choice decides: a
 * node running it is fine whatever the others still record (they are switching), and so is a
 * member already registered here that still runs the other one (its mesh step switches as
 * soon as the new binary is installed, and warns until then); a newcomer on the other major is
 * refused.
 */
export function mixedMajorProblem(mapping: FlatMapping, self: string, major: YggdrasilMajor): string | undefined {
  const target = targetMeshMajor(mapping);
  if (target !== undefined) {
    if (target === major || parseNeighbours(mapping).some((n) => n.publicKey === self && !n.left)) return undefined;
    return (
      `This machine runs Yggdrasil ${major} but the cluster has moved to ${target} (config key ${MESH_MAJOR_KEY}); 0.4 and 0.5 cannot peer, so it would be cut off. ` +
      `Install Yggdrasil ${target} here (\`raptiformica slave\` of this host installs it), then try again.`
    );
  }
  const others = parseNeighbours(mapping)
    .filter((n) => n.publicKey !== self && n.yggdrasilMajor && !n.left)
    .map((n) => ({ node: `${n.name ?? memberName(n.publicKey)} (${n.host ?? n.meshAddress})`, major: n.yggdrasilMajor as YggdrasilMajor }));
  const same = assertSameMajor(major, others);
  return same.ok ? undefined : same.error;
}

/**
 * The Yggdrasil major the cluster in `mapping` runs: the one it chose (MESH_MAJOR_KEY, after a
 * migration), else the one every neighbour that has not left records (`yggdrasil_major`), or undefined when none records one (a new cluster) or they
 * disagree (already mixed; the mesh step names the odd ones). `slave` hands it to the server
 * type's bootstrap, so a host joining a 0.4 cluster is not given 0.5 (the two cannot peer).
 */
export function clusterYggdrasilMajor(mapping: FlatMapping): YggdrasilMajor | undefined {
  const chosen = targetMeshMajor(mapping);
  if (chosen !== undefined) return chosen;
  const majors = new Set(
    parseNeighbours(mapping)
      .filter((n) => !n.left && n.yggdrasilMajor)
      .map((n) => n.yggdrasilMajor as YggdrasilMajor),
  );
  return majors.size === 1 ? [...majors][0] : undefined;
}
