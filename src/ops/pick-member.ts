import { isIPv6 } from "node:net";
import type { FlatMapping } from "../config/flatten.ts";
import { memberName, parseNeighbours } from "../mesh/neighbours.ts";
import type { SshTarget } from "../remote/ssh.ts";
import { UserError } from "../util/errors.ts";
import { NO_MEMBER_KNOWN } from "./via-member.ts";

/** A member as `raptiformica ssh NODE` can name it: from this machine's copy of the config. */
export interface NamedMember {
  readonly name: string;
  readonly meshAddress: string;
  /** How this machine reaches it over SSH; absent for a member nobody can dial (behind NAT). */
  readonly host?: string;
  readonly sshPort: number;
}

/**
 * The members of `mapping` that have not left, with the name `members` shows for them (the
 * name they registered, else the first 16 hex digits of their key). Pure; throws nothing.
 */
export function namedMembers(mapping: FlatMapping): NamedMember[] {
  return parseNeighbours(mapping)
    .filter((n) => !n.left)
    .map((n) => ({ name: n.name ?? memberName(n.publicKey), meshAddress: n.meshAddress, ...(n.host ? { host: n.host } : {}), sshPort: n.sshPort }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.meshAddress.localeCompare(b.meshAddress));
}

/** An IPv6 address in its one canonical (compressed, lowercase) form; anything else as it is. */
function canonical(address: string): string {
  const bare = address.replace(/^\[(.*)\]$/, "$1");
  if (!isIPv6(bare)) return address;
  return new URL(`http://[${bare}]/`).hostname.replace(/^\[(.*)\]$/, "$1");
}

function describe(m: NamedMember): string {
  return `${m.name} (${m.meshAddress}${m.host ? `, ${m.host}` : ", no host"})`;
}

/**
 * The one member `query` names: a member whose name or mesh address is exactly `query` wins
 * (a mesh address in any IPv6 spelling, with or without brackets); otherwise the one member
 * whose name or mesh address starts with it. Pure.
 * @throws UserError when several members match (listing them, and saying to type more of the
 *   name or address), or none does (listing every member this machine knows, and where that
 *   list comes from: `listedBy`; with none known, how to bring one in).
 */
export function pickMember(
  members: readonly NamedMember[],
  query: string,
  listedBy = "The list is this machine's copy of the cluster's config; `raptiformica members` shows the cluster's own.",
): NamedMember {
  const q = query.trim();
  const address = canonical(q);
  const exact = members.filter((m) => m.name === q || canonical(m.meshAddress) === address);
  const matches = exact.length > 0 ? exact : q === "" ? [] : members.filter((m) => m.name.startsWith(q) || m.meshAddress.startsWith(q.replace(/^\[/, "")));
  if (matches.length === 1) return matches[0] as NamedMember;
  if (matches.length > 1) {
    throw new UserError(
      `${JSON.stringify(query)} names ${matches.length} members:\n  ${matches.map(describe).join("\n  ")}\n` +
        "Give more of the name or mesh address, so that it names one of them.",
    );
  }
  if (members.length === 0) throw new UserError(`No member is named ${JSON.stringify(query)}: ${NO_MEMBER_KNOWN}`);
  throw new UserError(
    `No member is named ${JSON.stringify(query)} (by name, mesh address, or the start of either). The members this machine knows:\n  ${members.map(describe).join("\n  ")}\n` +
      listedBy,
  );
}

/**
 * How this machine reaches `m` over SSH (root, its recorded host and SSH port).
 * @throws UserError when it has no host: nobody can dial it (it only dials out).
 */
export function targetOf(m: NamedMember): SshTarget {
  if (!m.host) {
    throw new UserError(
      `Member ${m.name} (${m.meshAddress}) has no host to reach it on: it recorded none (it only dials out, e.g. from behind NAT). ` +
        `Reach it over the mesh from another member instead: \`raptiformica ssh OTHER\`, then \`ssh root@${m.meshAddress}\` there.`,
    );
  }
  return { host: m.host, port: m.sshPort };
}

/**
 * Where this machine reaches the member with key `publicKey` over SSH, as `targetOf` says for a
 * named one, from the neighbours in `mapping`; undefined when `mapping` lists no such member (or
 * it left). Pure.
 * @throws UserError when it is listed without a host to reach it on (targetOf).
 */
export function memberTargetByKey(mapping: FlatMapping, publicKey: string): SshTarget | undefined {
  const n = parseNeighbours(mapping).find((x) => x.publicKey === publicKey && !x.left);
  if (!n) return undefined;
  return targetOf({ name: n.name ?? memberName(n.publicKey), meshAddress: n.meshAddress, ...(n.host ? { host: n.host } : {}), sshPort: n.sshPort });
}
