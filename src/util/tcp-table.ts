import { readFile } from "node:fs/promises";
import { endianness } from "node:os";

/** One TCP socket of /proc/net/tcp6, as far as the upstream watch needs it. */
export interface TcpSocket {
  /** The remote address, canonical IPv6 text (as `new URL` writes it), and port. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Bytes sent and not yet acknowledged. */
  readonly txQueue: number;
  /** Retransmission timeouts in a row that did not bring an acknowledgement (`retrnsmt`). */
  readonly retransmits: number;
}

/** Canonical text of an IPv6 address (lower case, zeros compressed), or undefined when it is not one. */
export function canonicalIPv6(address: string): string | undefined {
  try {
    return new URL(`http://[${address}]/`).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return undefined;
  }
}

/**
 * The address field of /proc/net/tcp6: 32 hex digits, four 32-bit words each printed in the
 * host's byte order (so reversed byte by byte on little-endian machines).
 */
function procAddress(hex: string, littleEndian: boolean): string | undefined {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return undefined;
  const bytes: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8).match(/../g) as string[];
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  const groups = Array.from({ length: 8 }, (_, g) => `${bytes[g * 2]}${bytes[g * 2 + 1]}`);
  return canonicalIPv6(groups.join(":"));
}

/**
 * Parses /proc/net/tcp6 (see the kernel's net/ipv6/tcp_ipv6.c get_tcp6_sock): one socket per
 * line after the header; lines it cannot read are skipped. `littleEndian` defaults to this
 * machine's byte order.
 */
export function parseTcp6Table(text: string, littleEndian: boolean = endianness() === "LE"): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if (f.length < 7) continue;
    const [addrHex, portHex] = (f[2] as string).split(":");
    const [txHex] = (f[4] as string).split(":");
    const remoteAddress = procAddress(addrHex ?? "", littleEndian);
    const retransmits = Number.parseInt(f[6] as string, 16);
    if (!remoteAddress || !portHex || !txHex || Number.isNaN(retransmits)) continue;
    out.push({ remoteAddress, remotePort: Number.parseInt(portHex, 16), txQueue: Number.parseInt(txHex, 16), retransmits });
  }
  return out;
}

/** This network namespace's TCP-over-IPv6 sockets; [] when /proc cannot be read. Never throws. */
export async function readTcp6Table(path = "/proc/net/tcp6"): Promise<TcpSocket[]> {
  try {
    return parseTcp6Table(await readFile(path, "utf8"));
  } catch {
    return [];
  }
}
