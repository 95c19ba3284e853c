import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
};

/** Writes `files` (path → content; objects are JSON) and commits them in a git repo at `dir`. */
export function commitFiles(dir: string, files: Record<string, unknown>, message = "update"): void {
  mkdirSync(dir, { recursive: true });
  execFileSync("git", ["init", "-q", "-b", "main", dir], { env: GIT_ENV });
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  }
  execFileSync("git", ["-C", dir, "add", "-A"], { env: GIT_ENV });
  execFileSync("git", ["-C", dir, "commit", "-q", "-m", message], { env: GIT_ENV });
}
