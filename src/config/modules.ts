import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { flatten, type FlatMapping, type Tree } from "./flatten.ts";
import { validateModule } from "./schema.ts";

/** One module JSON file that parsed and validated. */
export interface ModuleFile {
  readonly path: string;
  /** `core` for the built-in modules, else the installed module's directory name. */
  readonly origin: string;
  readonly mapping: FlatMapping;
}

/** One thing wrong in a module file: the dotted key it is at (none for the whole file) and what. */
export interface ModuleIssue {
  readonly key?: string;
  readonly message: string;
}

/**
 * A file that looks like a module but cannot be used, with every issue found in it (not only
 * the first); reported, never silently dropped.
 */
export interface ModuleProblem {
  readonly path: string;
  /** `core` for the built-in modules, else the installed module's directory name. */
  readonly origin: string;
  readonly issues: readonly ModuleIssue[];
}

export interface LoadedModules {
  readonly files: ModuleFile[];
  readonly problems: ModuleProblem[];
}

const SKIP_DIRS = new Set([".git", "node_modules", ".vagrant"]);

function jsonFilesBelow(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const entry of entries) {
    const full = join(dir, entry);
    let st;
    try {
      st = statSync(full);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if (!SKIP_DIRS.has(entry)) out.push(...jsonFilesBelow(full));
    } else if (entry.endsWith(".json")) {
      out.push(full);
    }
  }
  return out;
}

/**
 * Reads one JSON file. Files without `raptiformica_api_version` are not modules (a module repo
 * may carry a package.json) and are skipped; unparsable JSON and schema errors are problems.
 */
export function loadModuleFile(path: string, origin: string): ModuleFile | ModuleProblem | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { path, origin, issues: [{ message: `cannot be read: ${(e as Error).message}` }] };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // A module file is JSON by definition; a broken one is most likely a module with a typo.
    return { path, origin, issues: [{ message: `is not valid JSON (${(e as Error).message})` }] };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc) || !("raptiformica_api_version" in doc)) {
    return undefined;
  }
  const validated = validateModule(doc);
  if (!validated.ok) return { path, origin, issues: validated.problems };
  return { path, origin, mapping: flatten(validated.value as Tree) };
}

export function loadModulesIn(dir: string, origin: string): LoadedModules {
  const files: ModuleFile[] = [];
  const problems: ModuleProblem[] = [];
  for (const path of jsonFilesBelow(dir)) {
    const loaded = loadModuleFile(path, origin);
    if (loaded === undefined) continue;
    if ("mapping" in loaded) files.push(loaded);
    else problems.push(loaded);
  }
  return { files, problems };
}

/** Names of the installed user modules (directories in `<cache>/modules`). */
export function installedModuleNames(userModulesDir: string): string[] {
  try {
    return readdirSync(userModulesDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith("."))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/**
 * All module files in precedence order: built-in modules first, then each installed module by
 * name. Later files override earlier keys.
 */
export function discoverModules(coreModulesDir: string, userModulesDir: string, exclude: readonly string[] = []): LoadedModules {
  const core = loadModulesIn(coreModulesDir, "core");
  const files = [...core.files];
  const problems = [...core.problems];
  for (const name of installedModuleNames(userModulesDir)) {
    if (exclude.includes(name)) continue;
    const loaded = loadModulesIn(join(userModulesDir, name), name);
    files.push(...loaded.files);
    problems.push(...loaded.problems);
  }
  return { files, problems };
}

export function mergeModuleFiles(files: readonly ModuleFile[]): FlatMapping {
  const merged: FlatMapping = {};
  for (const file of files) Object.assign(merged, file.mapping);
  return merged;
}

/** What the user can do about a module problem, as a clause: fix or remove the module. */
export function fixAdvice(p: ModuleProblem): string {
  return p.origin === "core"
    ? "it is one of raptiformica's built-in modules, so reinstall raptiformica"
    : `fix it or remove its module with \`raptiformica install --remove ${p.origin}\``;
}

/**
 * A module problem as one paragraph: the file (`shownAs`, else its path), each issue on its own
 * line when there are several, and `advice` — by default that the file is skipped and
 * `fixAdvice`.
 */
export function describeProblem(p: ModuleProblem, opts: { shownAs?: string; advice?: string } = {}): string {
  const where = opts.shownAs ?? p.path;
  const advice = opts.advice ?? `This file is skipped; ${fixAdvice(p)}.`;
  const line = (i: ModuleIssue) => `${i.key ? `key ${i.key}: ` : ""}${i.message}`;
  const [only] = p.issues;
  if (p.issues.length === 1 && only) return `module file ${where}${only.key ? `, key ${only.key}` : ""}: ${only.message}. ${advice}`;
  return `module file ${where} has ${p.issues.length} problems:\n${p.issues.map((i) => `  ${line(i)}`).join("\n")}\n${advice}`;
}
