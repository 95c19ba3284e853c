import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
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

export function neighbourPrefix(publicKey: string): string {
  return `${NEIGHBOURS_PREFIX}${publicKey}/`;
}

export function parseNeighbours(mapping: FlatMapping): Neighbour[] {
  const fields = new Map<string, Record<string, string>>();
  for (const [key, value] of Object.entries(mapping)) {
    if (!key.startsWith(NEIGHBOURS_PREFIX)) continue;
    const [id, field, ...rest] = key.slice(NEIGHBOURS_PREFIX.length).split("/");
    if (!id || !field || rest.length > 0) continue;
    const entry = fields.get(id) ?? {};
    entry[field] = value;
    fields.set(id, entry);
  }
  const out: Neighbour[] = [];
  for (const [id, f] of fields) {
    const meshAddress = f["mesh_address"];
    if (!meshAddress || !/^[0-9a-f]{64}$/.test(id)) continue; // incomplete or foreign entry
    const major = f["yggdrasil_major"];
    out.push({
      publicKey: id,
      meshAddress,
      ...(f["host"] ? { host: f["host"] } : {}),
      sshPort: Number(f["ssh_port"] ?? 22) || 22,
      yggdrasilPort: Number(f["yggdrasil_port"] ?? 4863) || 4863,
      ...(major === "0.4" || major === "0.5" ? { yggdrasilMajor: major } : {}),
      ...(f["name"] ? { name: f["name"] } : {}),
      ...(f["uuid"] ? { uuid: f["uuid"] } : {}),
      ...(f["left"] === "true" ? { left: true } : {}),
    });
  }
  return out.sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1));
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

/** Why this node may not mesh with the others (a mix of Yggdrasil 0.4 and 0.5), if so. */
export function mixedMajorProblem(mapping: FlatMapping, self: string, major: YggdrasilMajor): string | undefined {
  const others = parseNeighbours(mapping)
    .filter((n) => n.publicKey !== self && n.yggdrasilMajor && !n.left)
    .map((n) => ({ node: `${n.name ?? memberName(n.publicKey)} (${n.host ?? n.meshAddress})`, major: n.yggdrasilMajor as YggdrasilMajor }));
  const same = assertSameMajor(major, others);
  return same.ok ? undefined : same.error;
}
