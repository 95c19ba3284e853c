import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { FlatMapping } from "./flatten.ts";
import { describeProblem, discoverModules, mergeModuleFiles, type LoadedModules } from "./modules.ts";
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
export class LocalConfig {
  readonly store: MutableConfigStore;
  private reported = false;

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

  /** Module files on disk, with problems reported once per process (errors under --strict). */
  modules(exclude: readonly string[] = []): LoadedModules {
    const loaded = discoverModules(this.coreModulesDir, this.paths.modules, exclude);
    this.report(loaded);
    return loaded;
  }

  onDiskMapping(exclude: readonly string[] = []): FlatMapping {
    return mergeModuleFiles(this.modules(exclude).files);
  }

  snapshot(): ConfigSnapshot {
    const stored = this.store.read();
    if (!stored.ok) throw storeErrorToUserError(stored.error);
    if (stored.value !== undefined) return { mapping: stored.value, origin: "mutable-config" };
    return { mapping: this.onDiskMapping(), origin: "modules" };
  }

  /** Atomic read-modify-write of the mutable config, seeded from the module files. */
  update(change: (current: FlatMapping) => FlatMapping): Promise<FlatMapping> {
    return this.store.update(() => this.onDiskMapping(), change);
  }

  private report(loaded: LoadedModules): void {
    if (loaded.problems.length === 0) return;
    if (this.strict) {
      throw new UserError(loaded.problems.map((p) => describeProblem(p)).join("\n") + "\n(--strict: stopping.)");
    }
    if (this.reported) return;
    this.reported = true;
    for (const p of loaded.problems) this.log.warn(describeProblem(p));
  }
}
