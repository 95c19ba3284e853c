import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { chmod, link, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../../util/exec.ts";
import { UserError, errorMessage } from "../../util/errors.ts";
import { addressForKey } from "./address.ts";
import type { YggdrasilInfo } from "./version.ts";
import { makePrivateDir } from "../../util/private-dir.ts";

/** A node's Yggdrasil key pair; its mesh address follows from the public key. */
export interface Identity {
  /** 128 hex chars, Go's ed25519.PrivateKey layout: 32-byte seed then 32-byte public key. */
  privateKey: string;
  /** 64 hex chars. */
  publicKey: string;
  address: string;
}

export const IDENTITY_FILE = "private.key";

const PRIVATE_KEY_HEX = /^[0-9a-f]{128}$/;
const GENCONF_TIMEOUT_MS = 15_000;

// PKCS#8 wrapping of a raw ed25519 seed, so node's crypto can derive the public key from it.
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** The public key that belongs to the seed half of `privateKey` (128 hex chars). */
export function publicKeyFromSeed(privateKey: string): string {
  const seed = Buffer.from(privateKey.slice(0, 64), "hex");
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  const jwk = createPublicKey(key).export({ format: "jwk" });
  if (typeof jwk.x !== "string") throw new Error("node:crypto returned an ed25519 public key without x");
  return Buffer.from(jwk.x, "base64url").toString("hex");
}

/** Checks a stored key; the error text says what is wrong with it. */
function parsePrivateKey(text: string): { ok: true; identity: Identity } | { ok: false; problem: string } {
  const privateKey = text.trim().toLowerCase();
  if (privateKey === "") return { ok: false, problem: "it is empty" };
  if (!PRIVATE_KEY_HEX.test(privateKey)) {
    return { ok: false, problem: `it does not hold 128 hexadecimal characters (found ${privateKey.length} characters)` };
  }
  const publicKey = privateKey.slice(64);
  // A flipped bit anywhere shows up here: the public half must be the one the seed generates.
  if (publicKeyFromSeed(privateKey) !== publicKey) {
    return { ok: false, problem: "its public half does not match its seed half" };
  }
  return { ok: true, identity: { privateKey, publicKey, address: addressForKey(publicKey) } };
}

function corruptKeyError(file: string, problem: string): UserError {
  return new UserError(
    `The Yggdrasil key file ${file} is corrupt: ${problem}. It is this node's identity (its mesh address is derived ` +
      `from it), so raptiformica will not replace it on its own. Restore the file from a backup, or delete it to give ` +
      `this node a new key and a new mesh address (the other members then have to learn the new key: rejoin the cluster).`,
  );
}

async function readIdentity(file: string): Promise<Identity | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UserError(`Cannot read the Yggdrasil key file ${file}: ${errorMessage(e)}. Check its permissions (it should be owned by the user running raptiformica, mode 0600).`);
  }
  const parsed = parsePrivateKey(text);
  if (!parsed.ok) throw corruptKeyError(file, parsed.problem);
  // The key is a secret; tighten a file someone loosened, without touching its content.
  const mode = (await stat(file)).mode & 0o777;
  if (mode !== 0o600) await chmod(file, 0o600);
  return parsed.identity;
}

/** A fresh key from `yggdrasil -genconf`, cross-checked against what that binary says about it. */
async function generateIdentity(info: YggdrasilInfo): Promise<Identity> {
  const gen = await run(info.binary, ["-genconf", "-json"], { timeoutMs: GENCONF_TIMEOUT_MS });
  if (gen.exitCode !== 0) {
    throw new Error(`${info.binary} -genconf -json failed (exit ${gen.exitCode}): ${gen.failedToStart ?? gen.stderr.trim()}`);
  }
  const conf = JSON.parse(gen.stdout) as { PrivateKey?: unknown; PublicKey?: unknown };
  if (typeof conf.PrivateKey !== "string") throw new Error(`${info.binary} -genconf -json printed no PrivateKey`);
  const parsed = parsePrivateKey(conf.PrivateKey);
  if (!parsed.ok) throw new Error(`${info.binary} -genconf -json printed a PrivateKey we do not understand: ${parsed.problem}`);
  const id = parsed.identity;

  // We rely on "public key = last 64 hex chars of the private key" and on our own address
  // derivation; a yggdrasil build that disagrees must stop us before a key is stored.
  let claimedPublic: string;
  if (info.major === "0.4") {
    claimedPublic = typeof conf.PublicKey === "string" ? conf.PublicKey.toLowerCase() : "";
  } else {
    const pub = await run(info.binary, ["-useconf", "-publickey"], { input: JSON.stringify({ PrivateKey: id.privateKey }), timeoutMs: GENCONF_TIMEOUT_MS });
    claimedPublic = pub.stdout.trim().toLowerCase();
  }
  if (claimedPublic !== id.publicKey) {
    throw new Error(`${info.binary} reports public key ${JSON.stringify(claimedPublic)} for a key whose public half is ${id.publicKey}`);
  }
  const addrConf = info.major === "0.4" ? { PublicKey: id.publicKey, PrivateKey: id.privateKey } : { PrivateKey: id.privateKey };
  const addr = await run(info.binary, ["-useconf", "-address"], { input: JSON.stringify(addrConf), timeoutMs: GENCONF_TIMEOUT_MS });
  if (addr.stdout.trim() !== id.address) {
    throw new Error(`${info.binary} derives address ${JSON.stringify(addr.stdout.trim())} from a new key, we derive ${id.address}`);
  }
  return id;
}

/**
 * Writes `data` to `file` only if `file` does not exist yet, atomically (temp file, fsync, then
 * link). Linking instead of renaming means two processes creating an identity at the same time
 * cannot overwrite each other: the loser finds the winner's key and uses it.
 * Returns false when the file already existed.
 */
async function createFileOnce(file: string, data: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      await unlink(tmp);
      return false;
    }
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS") {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    // A filesystem without hard links: fall back to rename (still atomic, just not exclusive).
    await rename(tmp, file);
    return true;
  }
  await unlink(tmp);
  return true;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * This node's identity, stored in `<dir>/private.key` (0600, dir 0700). Created once; every later
 * call returns the same key, so the node keeps its mesh address across restarts. A damaged file
 * is an error, never a reason to make a new key.
 */
export async function loadOrCreateIdentity(dir: string, info: YggdrasilInfo): Promise<Identity> {
  const file = join(dir, IDENTITY_FILE);
  makePrivateDir(dir);
  const existing = await readIdentity(file);
  if (existing) return existing;

  const fresh = await generateIdentity(info);
  await chmod(dir, 0o700);
  const created = await createFileOnce(file, `${fresh.privateKey}\n`);
  if (created) {
    await syncDir(dir);
    return fresh;
  }
  const raced = await readIdentity(file);
  if (!raced) throw new Error(`${file} disappeared while it was being created`);
  return raced;
}
