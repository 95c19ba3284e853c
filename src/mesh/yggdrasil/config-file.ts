import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { configHash } from "./config.ts";
import { makePrivateDir } from "../../util/private-dir.ts";

/**
 * Writes a rendered config when it differs from what is on disk. Atomic and 0600: the config
 * holds the node's private key. `changed` tells the caller whether a restart is worth it.
 */
export async function writeConfigFile(file: string, text: string): Promise<{ changed: boolean; hash: string }> {
  const hash = configHash(text);
  let current: string | undefined;
  try {
    current = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (current !== undefined && configHash(current) === hash) return { changed: false, hash };
  makePrivateDir(dirname(file));
  await writeFileAtomic(file, text, { mode: 0o600, fsync: true });
  return { changed: true, hash };
}
