import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { FlatMapping } from "./flatten.ts";
import { describeProblem, discoverModules, fixAdvice, mergeModuleFiles, type LoadedModules } from "./modules.ts";
import type { CachePaths } from "./paths.ts";
import { MutableConfigStore, storeErrorToUserError } from "./store.ts";

/** Where the mapping a command works with came from. */
export type ConfigOrigin = "mutable-config" | "modules";

export interface ConfigSnapshot {
  readonly mapping: FlatMapping;
  readonly origin: ConfigOrigin;
}

/**
 * The config as seen from this machine without a cluster: the mutable config when one exists,
 * otherwise the merged module files (the original's cache → module files precedence; the
 * cluster KV is put in front of this by the node runtime).
 */
/**
 * Module problems already printed by this process: a command may build more than one
 * LocalConfig and read the modules several times, but says each problem once.
 */
const reportedProblems = new Set<string>();

const capitalized = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}`;

export class LocalConfig {
  readonly store: MutableConfigStore;
  private checked = false;

  constructor(
    readonly paths: CachePaths,
    readonly installDir: string,
    private readonly log: Logger,
    private readonly strict: boolean,
  ) {
    this.store = new MutableConfigStore(paths.mutableConfig);
  }

  get coreModulesDir(): string {
    return join(this.installDir, "modules");
  }

  /** Module files on disk, with problems reported once per process (an error under --strict). */
  modules(exclude: readonly string[] = []): LoadedModules {
    const loaded = discoverModules(this.coreModulesDir, this.paths.modules, exclude);
    this.report(loaded);
    return loaded;
  }

  onDiskMapping(exclude: readonly string[] = []): FlatMapping {
    return mergeModuleFiles(this.modules(exclude).files);
  }

  /**
   * The mutable config, or the merged module files before there is one. The module files are
   * read in either case (once per instance), so that every command that works with the config
   * reports a malformed module — and stops on one under --strict — whether or not the config
   * was seeded from them already.
   */
  snapshot(): ConfigSnapshot {
    const stored = this.store.read();
    if (!stored.ok) throw storeErrorToUserError(stored.error);
    if (stored.value !== undefined) {
      if (!this.checked) this.modules();
      return { mapping: stored.value, origin: "mutable-config" };
    }
    return { mapping: this.onDiskMapping(), origin: "modules" };
  }

  /**
   * Atomic read-modify-write of the mutable config, seeded from the module files. `exclude`
   * names installed modules to leave out of both the seed and the problem check: the module
   * being removed or replaced, so that `--strict` does not stop its own repair over that
   * module's problems (a truncated file, a schema error) — whether or not a mutable config
   * exists yet.
   */
  update(change: (current: FlatMapping) => FlatMapping, exclude: readonly string[] = []): Promise<FlatMapping> {
    if (!this.checked) this.modules(exclude);
    return this.store.update(() => this.onDiskMapping(exclude), change);
  }

  private report(loaded: LoadedModules): void {
    if (loaded.problems.length > 0 && this.strict) {
      const texts = loaded.problems.map((p) => describeProblem(p, { advice: `${capitalized(fixAdvice(p))}.` }));
      throw new UserError(`${texts.join("\n")}\n(--strict: stopping.)`);
    }
    this.checked = true;
    for (const text of loaded.problems.map((p) => describeProblem(p))) {
      if (reportedProblems.has(text)) continue;
      reportedProblems.add(text);
      this.log.warn(text);
    }
  }
}
