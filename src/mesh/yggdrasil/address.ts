/**
 * The mesh address Yggdrasil derives from a node's ed25519 public key (yggdrasil-go,
 * src/address/address.go). Computing it here lets a member know a peer's address from its key
 * alone, before that peer is reachable, and check what a peer claims.
 */

const PUBLIC_KEY_HEX = /^[0-9a-fA-F]{64}$/;

/** 200::/7: addresses start with 0x02, /64 subnets with 0x03. */
const ADDRESS_PREFIX = 0x02;

export function isPublicKeyHex(s: string): boolean {
  return PUBLIC_KEY_HEX.test(s);
}

function addressBytes(publicKeyHex: string): Uint8Array {
  if (!isPublicKeyHex(publicKeyHex)) {
    throw new Error(`not an ed25519 public key (expected 64 hex characters): ${JSON.stringify(publicKeyHex)}`);
  }
  const key = Buffer.from(publicKeyHex, "hex");
  // The address spends its bits on the inverted key, so keys with many leading zero bits
  // (the ones people grind for) give addresses that encode more of the key.
  for (let i = 0; i < key.length; i++) key[i] = ~key[i]! & 0xff;

  const addr = new Uint8Array(16);
  addr[0] = ADDRESS_PREFIX;
  let ones = 0;
  let done = false;
  let bits = 0;
  let nBits = 0;
  let out = 2;
  for (let idx = 0; idx < 8 * key.length && out < 16; idx++) {
    const bit = (key[idx >> 3]! >> (7 - (idx & 7))) & 1;
    if (!done) {
      if (bit === 1) {
        ones++;
      } else {
        // The first 0 ends the run of ones and is not stored.
        done = true;
      }
      continue;
    }
    bits = ((bits << 1) | bit) & 0xff;
    if (++nBits === 8) {
      addr[out++] = bits;
      nBits = 0;
      bits = 0;
    }
  }
  addr[1] = ones;
  return addr;
}

/**
 * IPv6 text as Go's net.IP.String() writes it (RFC 5952): lowercase, no leading zeros, the
 * first longest run of two or more zero groups written as "::". Matching Go byte for byte lets
 * us compare with what yggdrasil prints and reports over its admin socket.
 */
export function formatIPv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new Error(`an IPv6 address has 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number) => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(":");
  const head = groups.slice(0, bestStart).map(hex).join(":");
  const tail = groups.slice(bestStart + bestLen).map(hex).join(":");
  return `${head}::${tail}`;
}

/** The node's 200::/7 address, e.g. `201:9e3:2644:fad9:e9d9:822a:fb67:ba87`. */
export function addressForKey(publicKeyHex: string): string {
  return formatIPv6(addressBytes(publicKeyHex));
}

/** The node's routed /64 in 300::/7, written as yggdrasil does: `301:9e3:2644:fad9::/64`. */
export function subnetForKey(publicKeyHex: string): string {
  const addr = addressBytes(publicKeyHex);
  const subnet = new Uint8Array(16);
  subnet.set(addr.subarray(0, 8));
  subnet[0] = ADDRESS_PREFIX | 0x01;
  return `${formatIPv6(subnet)}/64`;
}
