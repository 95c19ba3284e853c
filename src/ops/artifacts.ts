import { existsSync } from "node:fs";
import { join } from "node:path";
import { run } from "../util/exec.ts";
import { UserError } from "../util/errors.ts";
import { makePrivateDir } from "../util/private-dir.ts";

/**
 * The artifact cache (`<cache>/artifacts/repositories/<name>`): provisioner sources are cloned
 * or fast-forwarded here, on the operator's machine, and copied to the nodes from here — so a
 * node needs no access to the repository. A failed update keeps the previous checkout.
 */
const inFlight = new Map<string, Promise<string>>();

/**
 * Concurrent slaves (deploy) share one fetch per checkout: git refuses two at once in one repo.
 * @throws UserError when the source cannot be cloned, or its cached checkout is broken.
 */
export function cacheSource(artifactsDir: string, name: string, source: string): Promise<string> {
  const id = `${artifactsDir}\0${name}`;
  let p = inFlight.get(id);
  if (!p) {
    p = fetchSource(artifactsDir, name, source).finally(() => inFlight.delete(id));
    inFlight.set(id, p);
  }
  return p;
}

async function fetchSource(artifactsDir: string, name: string, source: string): Promise<string> {
  const repos = join(artifactsDir, "repositories");
  const dir = join(repos, name);
  makePrivateDir(repos);
  if (existsSync(join(dir, ".git"))) {
    const pulled = await run("git", ["-C", dir, "pull", "--ff-only", "-q"], { timeoutMs: 300_000 });
    if (pulled.exitCode !== 0) {
      // Like the original: keep going with what the cache has.
      const reset = await run("git", ["-C", dir, "reset", "-q", "--hard", "HEAD"], { timeoutMs: 60_000 });
      if (reset.exitCode !== 0) throw new UserError(`The cached checkout ${dir} of ${source} is broken (${reset.stderr.trim()}); remove it and try again.`);
    }
    return dir;
  }
  const cloned = await run("git", ["clone", "-q", "--", source, dir], { timeoutMs: 600_000 });
  if (cloned.exitCode !== 0) throw new UserError(`Cannot clone ${source} (provisioner ${name}): ${cloned.stderr.trim().split("\n").pop()}`);
  return dir;
}
