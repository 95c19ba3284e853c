import { isIP } from "node:net";
import { UserError } from "../util/errors.ts";
import { err, ok, type Result } from "../util/result.ts";

/**
 * A host other machines dial: what yggdrasil puts in `tcp://HOST:PORT` and ssh in `root@HOST`.
 * `value` is the one stored form: a DNS name in lower case, a dotted IPv4 address, or a bare
 * IPv6 address in its canonical (RFC 5952) form, with a `%zone` for link-local ones.
 */
export interface Host {
  readonly kind: "name" | "ipv4" | "ipv6";
  readonly value: string;
}

/** Why a string is not a usable host; `describeHostProblem` turns it into a sentence. */
export type HostProblem =
  | { readonly kind: "empty" }
  | { readonly kind: "too-long"; readonly length: number }
  /** `h:22`, `[::1]:22`: a port where only a host belongs. */
  | { readonly kind: "with-port"; readonly host: string; readonly port: string }
  /** Characters no DNS name or IP address holds (`_`, white space, shell characters, `/`, `@`…). */
  | { readonly kind: "characters"; readonly characters: string }
  | { readonly kind: "label"; readonly label: string; readonly why: string }
  /** All-numeric last label: a mistyped IPv4 address (`10.0.0.256`), not a name. */
  | { readonly kind: "ipv4" }
  | { readonly kind: "ipv6"; readonly why: string };

/** RFC 1035: 253 characters for a whole name (without the root dot), 63 for one label. */
const MAX_NAME = 253;
const MAX_LABEL = 63;
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** What a Linux interface name may be (IFNAMSIZ 16 with the NUL), for an IPv6 zone. */
const ZONE = /^[A-Za-z0-9_.-]{1,15}$/;

function parseIpv6(inside: string): Result<Host, HostProblem> {
  const [ip, zone] = inside.split("%", 2) as [string, string | undefined];
  if (isIP(ip) !== 6) return err({ kind: "ipv6", why: `${ip} is not an IPv6 address` });
  if (zone !== undefined && !ZONE.test(zone)) return err({ kind: "ipv6", why: `its zone ${JSON.stringify(zone)} is not an interface name` });
  // URL applies RFC 5952 (lower case, longest zero run as ::), so one address has one spelling.
  const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return ok({ kind: "ipv6", value: zone === undefined ? canonical : `${canonical}%${zone}` });
}

/**
 * Checks a host given by a user, an inventory, a module or the cluster KV, and returns the one
 * form every command stores and dials: a DNS name (letters, digits, hyphens, dots; lower-cased;
 * a trailing root dot is kept), an IPv4 address, or an IPv6 address given bare or in brackets
 * (`2001:db8::1`, `[2001:db8::1]`, stored bare). Refused, as a typed problem: an empty string,
 * a port (`h:22`, `[::1]:22`), characters yggdrasil's URI parser or a DNS resolver cannot take
 * (`_`, white space, `;`, `$`, `/`, `@`, non-ASCII), labels longer than 63 or names longer than
 * 253 characters, labels that begin or end with `-` (which ssh would read as an option), and
 * all-numeric names that are no IPv4 address. Never throws.
 */
export function parseHost(input: string): Result<Host, HostProblem> {
  if (input === "") return err({ kind: "empty" });
  if (input.length > MAX_NAME + 1 && !input.includes(":")) return err({ kind: "too-long", length: input.length });
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(input);
  if (bracketed) {
    const inside = bracketed[1] as string;
    if (bracketed[2] !== undefined) return err({ kind: "with-port", host: `[${inside}]`, port: bracketed[2] });
    return parseIpv6(inside);
  }
  if (input.includes(":")) {
    const hostPort = /^([^:]+):(\d*)$/.exec(input);
    if (hostPort) return err({ kind: "with-port", host: hostPort[1] as string, port: hostPort[2] as string });
    return parseIpv6(input);
  }
  if (isIP(input) === 4) return ok({ kind: "ipv4", value: input });
  const odd = [...new Set(input.replace(/[A-Za-z0-9.-]/g, ""))].join("");
  if (odd !== "") return err({ kind: "characters", characters: odd });
  const name = input.toLowerCase();
  const labels = (name.endsWith(".") ? name.slice(0, -1) : name).split(".");
  for (const label of labels) {
    if (label === "") return err({ kind: "label", label, why: "it has an empty label (two dots in a row, or a dot at the start)" });
    if (label.length > MAX_LABEL) return err({ kind: "label", label, why: `its label ${label.slice(0, 20)}… is ${label.length} characters long (at most ${MAX_LABEL})` });
    if (!LABEL.test(label)) return err({ kind: "label", label, why: `its label ${label} begins or ends with "-"` });
  }
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return err({ kind: "ipv4" });
  if (name.length > MAX_NAME + (name.endsWith(".") ? 1 : 0)) return err({ kind: "too-long", length: name.length });
  return ok({ kind: "name", value: name });
}

function printable(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/**
 * One sentence saying why `input` is not a host and what to write instead. `portHint` says
 * where a port goes at this entry point (e.g. "with --port", `in the entry's "port"`).
 */
export function describeHostProblem(input: string, problem: HostProblem, portHint = "separately"): string {
  const what = `${printable(input)} is not a hostname or IP address`;
  switch (problem.kind) {
    case "empty":
      return `${what}: it is empty`;
    case "too-long":
      return `${what}: it is ${problem.length} characters long, a DNS name has at most ${MAX_NAME}`;
    case "with-port":
      return `${what}: it has a port (${problem.port || "empty"}) in it; give the host alone (${problem.host}) and the port ${portHint}`;
    case "characters":
      return (
        `${what}: it contains ${printable(problem.characters)}, which yggdrasil and DNS cannot use ` +
        "(names hold only letters, digits, hyphens and dots; an IPv6 address may be written in brackets)"
      );
    case "label":
      return `${what}: ${problem.why}`;
    case "ipv4":
      return `${what}: it looks like an IPv4 address but is not one (four numbers 0-255)`;
    case "ipv6":
      return `${what}: ${problem.why}`;
  }
}

/**
 * `parseHost` for an entry point that stops on a bad host: returns the stored form, or throws a
 * UserError naming `what` (e.g. "--advertise-host") and the value.
 */
export function requireHost(input: string, what: string, portHint?: string): string {
  const parsed = parseHost(input);
  if (!parsed.ok) throw new UserError(`${what}: ${describeHostProblem(input, parsed.error, portHint)}.`);
  return parsed.value.value;
}

/** How a host is written where a port or a URI follows: IPv6 in brackets, anything else as it is. */
export function bracketed(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** `host:port`, `[v6]:port`: how a host and port are shown to users. */
export function hostPort(host: string, port: number): string {
  return `${bracketed(host)}:${port}`;
}
