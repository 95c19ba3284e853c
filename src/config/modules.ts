import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { flatten, type FlatMapping, type Tree } from "./flatten.ts";
import { validateModule } from "./schema.ts";

/** One module JSON file that parsed and validated. */
export interface ModuleFile {
  readonly path: string;
  /** `core` for the built-in modules, else the installed module's directory name. */
  readonly origin: string;
  readonly mapping: FlatMapping;
}

/** A file that looks like a module but cannot be used; reported, never silently dropped. */
export interface ModuleProblem {
  readonly path: string;
  readonly key?: string;
  readonly message: string;
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
    return { path, message: `cannot be read: ${(e as Error).message}` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // A module file is JSON by definition; a broken one is most likely a module with a typo.
    return { path, message: `is not valid JSON (${(e as Error).message})` };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc) || !("raptiformica_api_version" in doc)) {
    return undefined;
  }
  const validated = validateModule(doc);
  if (!validated.ok) {
    const first = validated.problems[0];
    const more = validated.problems.length > 1 ? ` (and ${validated.problems.length - 1} more problem(s))` : "";
    return { path, key: first?.key, message: `${first?.message ?? "invalid"}${more}` };
  }
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

export function describeProblem(p: ModuleProblem, base?: string): string {
  const where = base ? relative(base, p.path) || basename(p.path) : p.path;
  const key = p.key ? `, key ${p.key}` : "";
  return `module file ${where}${key}: ${p.message}. This file is skipped; fix it or remove its module with \`raptiformica install --remove <module>\`.`;
}
