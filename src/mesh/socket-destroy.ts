import { run } from "../util/exec.ts";
import type { Logger } from "../util/log.ts";

/**
 * Closing this machine's TCP sockets from outside the process that owns them, with the
 * kernel's socket destroy (`ss -K`): how the agent drops a peering yggdrasil still holds (a
 * member moved away, a connection stalled). One place builds the `ss` filters, because ss reads
 * an IPv6 address only in brackets: `dst ::1` silently matched nothing and `src fd00::1`
 * failed to parse, so on an IPv6 underlay the moved notices closed nothing.
 */

/** An address as an `ss` filter takes it: IPv6 in brackets, without an interface scope (`fe80::1%eth0` → `[fe80::1]`). */
export function ssAddress(host: string): string {
  const bare = host.replace(/^\[|\]$/g, "");
  const scope = bare.indexOf("%");
  const address = scope >= 0 ? bare.slice(0, scope) : bare;
  return address.includes(":") ? `[${address}]` : address;
}

/** `ss` filter for the sockets whose far end is host:port. */
export function farEndFilter(end: { readonly host: string; readonly port: number }): string[] {
  return ["dst", ssAddress(end.host), "dport", "=", `:${end.port}`];
}

/** `ss` filter for this machine's sockets on local address `address` and port `port` (the peerings others made to it there). */
export function localEndFilter(address: string, port: number): string[] {
  return ["src", ssAddress(address), "sport", "=", `:${port}`];
}

/** `ss` filter for exactly one established connection (both ends). */
export function connectionFilter(c: { readonly local: { readonly host: string; readonly port: number }; readonly peer: { readonly host: string; readonly port: number } }): string[] {
  return ["state", "established", ...localEndFilter(c.local.host, c.local.port), ...farEndFilter(c.peer)];
}

/**
 * Closes this machine's TCP sockets matching an `ss` filter (one of the above) with the kernel's
 * socket destroy (`ss -K`, CONFIG_INET_DIAG_DESTROY, which Debian's kernels have; needs
 * CAP_NET_ADMIN, which the agent has). Resolves to whether ss ran; never throws: without it
 * the peerings only close at yggdrasil's own timeout, as before.
 */
export async function destroySockets(filter: readonly string[], log: Logger): Promise<boolean> {
  const r = await run("ss", ["-K", "-t", ...filter], { timeoutMs: 3000 });
  if (r.exitCode !== 0) log.debug(`ss -K ${filter.join(" ")}: ${r.failedToStart ?? (r.stderr.trim() || `exit ${r.exitCode}`)}`);
  return r.exitCode === 0;
}
