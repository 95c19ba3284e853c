import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Makes `path` and any missing parents as directories only their owner may enter (mode 0700,
 * `mkdir -p -m 700`); an existing directory is left as it is.
 *
 * Throws the `ENOENT` error of `mkdir` when the nearest existing ancestor is a directory that has
 * been removed but is still held open (a process's cwd, a bind mount of a deleted directory: its
 * link count is 0). Node's own recursive mkdir loops forever there, one core at 100 %: `mkdir`
 * of the child says ENOENT, of the parent EEXIST, and a stat of the parent says "directory", so
 * it tries the child again (seen on a netns member whose instance dir was deleted under it).
 * Other errors are those of `mkdirSync` (EACCES, ENOTDIR, …).
 */
export function makePrivateDir(path: string): void {
  let ancestor = path;
  for (;;) {
    const st = statSync(ancestor, { throwIfNoEntry: false });
    if (st) {
      if (st.isDirectory() && st.nlink === 0) {
        throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${path}' (${ancestor} has been removed)`), {
          code: "ENOENT",
          syscall: "mkdir",
          path,
        });
      }
      break;
    }
    const up = dirname(ancestor);
    if (up === ancestor) break;
    ancestor = up;
  }
  mkdirSync(path, { recursive: true, mode: 0o700 });
}
