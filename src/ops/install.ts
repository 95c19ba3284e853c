import { cpSync, existsSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import { homedir } from "node:os";
import { randomBytes } from "node:crypto";
import type { LocalConfig } from "../config/local.ts";
import { describeProblem, installedModuleNames, loadModulesIn, mergeModuleFiles, type ModuleFile } from "../config/modules.ts";
import { refuseNewConfigProblems, type ConfigProblem } from "./config-checks.ts";
import { UserError } from "../util/errors.ts";
import { run } from "../util/exec.ts";
import type { Logger } from "../util/log.ts";
import { err, ok, type Result } from "../util/result.ts";
import { makePrivateDir } from "../util/private-dir.ts";

export type ModuleSource =
  | { readonly kind: "git"; readonly url: string; readonly name: string }
  | { readonly kind: "path"; readonly path: string; readonly name: string };

const GITHUB_SHORTHAND = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const MODULE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

function moduleNameFrom(spec: string): string {
  return basename(spec.replace(/[/\\]+$/, "").replace(/^.*:/, "")).replace(/\.git$/, "");
}

/**
 * `owner/repo` → GitHub; an explicit path (`/…`, `./…`, `../…`, `~/…`) or an existing
 * directory → local; anything else is used verbatim as a git URL. The module's directory name
 * is the last path component without `.git`.
 * Pure; throws nothing (problems are the Result's error).
 */
export function parseModuleSpec(spec: string, cwd: string = process.cwd()): Result<ModuleSource, string> {
  const s = spec.trim();
  if (s === "") return err("the module name is empty");
  let source: ModuleSource;
  const explicitPath = /^(\/|\.\.?\/|~\/)/.test(s);
  if (explicitPath) {
    const raw = s.startsWith("~/") ? join(homedir(), s.slice(2)) : s;
    const path = isAbsolute(raw) ? raw : resolve(cwd, raw);
    source = { kind: "path", path, name: moduleNameFrom(path) };
  } else if (GITHUB_SHORTHAND.test(s) && !existsSync(resolve(cwd, s))) {
    source = { kind: "git", url: `https://github.com/${s.replace(/\.git$/, "")}`, name: moduleNameFrom(s) };
  } else if (existsSync(resolve(cwd, s))) {
    const path = resolve(cwd, s);
    source = { kind: "path", path, name: moduleNameFrom(path) };
  } else {
    source = { kind: "git", url: s, name: moduleNameFrom(s) };
  }
  if (!MODULE_NAME.test(source.name)) {
    return err(`cannot derive a module directory name from "${spec}" (got "${source.name}")`);
  }
  return ok(source);
}

async function fetchModule(source: ModuleSource, dest: string): Promise<void> {
  if (source.kind === "path") {
    let isDir = false;
    try {
      isDir = statSync(source.path).isDirectory();
    } catch {
      /* reported below */
    }
    if (!isDir) throw new UserError(`Cannot install module from ${source.path}: no such directory. Give a git URL, owner/repo, or the path of a module directory.`);
    if (!existsSync(join(source.path, ".git"))) {
      // A plain directory is copied as it is (no VCS needed to try out a module).
      cpSync(source.path, dest, { recursive: true, filter: (p) => !p.split(sep).includes("node_modules") });
      return;
    }
  }
  const url = source.kind === "git" ? source.url : source.path;
  const res = await run("git", ["clone", "--quiet", "--", url, dest], {
    timeoutMs: 300_000,
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0" },
  });
  if (res.exitCode !== 0) {
    const why = res.timedOut ? "timed out after 300 s" : (res.failedToStart ?? res.stderr.trim()) || `git exited ${res.exitCode}`;
    throw new UserError(`Cannot install module "${source.name}": git clone ${url} failed: ${why}. Check the URL and that this machine can reach it; nothing was changed.`);
  }
}

/** How a file of a module source is named to the user: below the path they gave, or in the repository. */
function sourceFile(spec: string, source: ModuleSource, file: string): string {
  return source.kind === "path" ? `${spec.trim().replace(/[/\\]+$/, "")}/${file}` : `${file} in ${source.url}`;
}

/**
 * A config problem a module brings in, worded for the module's author: the file and the key in
 * it to change (a `config set` would only be overwritten by the next install of the module).
 * Falls back to the problem's own message when no file of the module sets any key involved.
 */
function moduleFix(p: ConfigProblem, files: readonly ModuleFile[], spec: string, shownAs: (path: string) => string): string {
  // The last file wins in the merge, so it is the one to change.
  for (const f of [...files].reverse()) {
    const key = p.keys.find((k) => f.mapping[k] !== undefined);
    if (key === undefined) continue;
    const dotted = key.split("/").slice(1).join(".");
    return `${p.what} Change ${dotted} in ${shownAs(f.path)} and run \`raptiformica install ${spec.trim()}\` again.`;
  }
  return p.message;
}

export interface InstallResult {
  readonly name: string;
  readonly dir: string;
  readonly files: number;
  readonly keys: number;
  readonly replaced: boolean;
}

/**
 * Loads a module: fetch into a hidden temp dir first, validate, then swap it in and write its
 * keys to the mutable config in one locked update. Any failure before the swap leaves the
 * previous module and config untouched.
 * @throws UserError when the spec, the fetch, the module or its keys are refused; nothing is changed then.
 */
export async function installModule(config: LocalConfig, spec: string, log: Logger): Promise<InstallResult> {
  const parsed = parseModuleSpec(spec);
  if (!parsed.ok) throw new UserError(`Cannot install module "${spec}": ${parsed.error}.`);
  const source = parsed.value;
  // The other modules are reported as every command does (an error under --strict); the one
  // being replaced is not: installing a fixed version is how a broken one is repaired.
  config.modules([source.name]);
  const modulesDir = config.paths.modules;
  makePrivateDir(modulesDir);
  const dest = join(modulesDir, source.name);
  const tmp = join(modulesDir, `.install-${source.name}-${randomBytes(4).toString("hex")}`);
  try {
    log.debug(`fetching module ${source.name} from ${source.kind === "git" ? source.url : source.path}`);
    await fetchModule(source, tmp);
    const loaded = loadModulesIn(tmp, source.name);
    if (loaded.problems.length > 0) {
      // Name the files as the user knows them (in the source given), not where they would have
      // gone: an installed copy of the module may be there, and it is not the one refused.
      const kept = existsSync(dest)
        ? `The installed version of ${source.name} (${dest}) stays as it was.`
        : "Nothing was installed.";
      const advice = `Fix the module and run \`raptiformica install ${spec}\` again.`;
      const detail = loaded.problems.map((p) => describeProblem(p, { shownAs: sourceFile(spec, source, relative(tmp, p.path)), advice: "" }).trimEnd()).join("\n");
      throw new UserError(`Module "${source.name}" was not installed because it is malformed:\n${detail}\n${kept} ${advice}`);
    }
    if (loaded.files.length === 0) {
      throw new UserError(
        `Module "${source.name}" was not installed: it has no module file (a *.json file with "raptiformica_api_version": "0.1", by convention raptiformica.json at its root).`,
      );
    }
    const newKeys = mergeModuleFiles(loaded.files);
    const replaced = existsSync(dest);
    const oldKeys = replaced ? Object.keys(mergeModuleFiles(loadModulesIn(dest, source.name).files)) : [];
    const restore = replaced ? config.onDiskMapping([source.name]) : {};
    await config.update((m) => {
      const before = { ...m };
      for (const k of oldKeys) {
        delete m[k];
        if (restore[k] !== undefined) m[k] = restore[k];
      }
      Object.assign(m, newKeys);
      refuseNewConfigProblems(before, m, `Installing module "${source.name}"`, (p) => moduleFix(p, loaded.files, spec, (f) => sourceFile(spec, source, relative(tmp, f))));
      return m;
    }, [source.name]);
    if (replaced) {
      const trash = `${tmp}.old`;
      renameSync(dest, trash);
      renameSync(tmp, dest);
      rmSync(trash, { recursive: true, force: true });
    } else {
      renameSync(tmp, dest);
    }
    return { name: source.name, dir: dest, files: loaded.files.length, keys: Object.keys(newKeys).length, replaced };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Unloads a module: delete every key its files define, restore the values the remaining
 * modules (core included) give those keys, then delete its directory. The module's own
 * problems never stop this, not even under --strict: removal is how a broken module goes.
 * `unreadable` lists its files that could not be read as modules (the keys they set, if any,
 * cannot be known and stay in the config).
 * @throws UserError when no module of that name is installed, or the config cannot be written.
 */
export async function removeModule(config: LocalConfig, spec: string): Promise<{ name: string; removedKeys: number; restoredKeys: number; unreadable: string[] }> {
  const parsed = parseModuleSpec(spec);
  const name = parsed.ok ? parsed.value.name : spec;
  const installed = installedModuleNames(config.paths.modules);
  if (!installed.includes(name)) {
    throw new UserError(
      `Module "${name}" is not installed in ${config.paths.modules} (installed: ${installed.join(", ") || "none"}). Nothing was changed.`,
    );
  }
  const dir = join(config.paths.modules, name);
  const own = loadModulesIn(dir, name);
  const keys = Object.keys(mergeModuleFiles(own.files));
  const restore = config.onDiskMapping([name]);
  let restored = 0;
  await config.update((m) => {
    const before = { ...m };
    for (const k of keys) {
      delete m[k];
      if (restore[k] !== undefined) {
        m[k] = restore[k];
        restored++;
      }
    }
    // The values that come back must fit the rest as an install's would (ports, timing, the CA).
    refuseNewConfigProblems(before, m, `Removing module "${name}"`);
    return m;
  }, [name]);
  rmSync(dir, { recursive: true, force: true });
  return { name, removedKeys: keys.length - restored, restoredKeys: restored, unreadable: own.problems.map((p) => p.path) };
}
