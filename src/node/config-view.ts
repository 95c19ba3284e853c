import type { Etcd3 } from "etcd3";
import { describeUnusableKey, keyProblem, type FlatMapping, type UnusableKey } from "../config/flatten.ts";
import type { LocalConfig } from "../config/local.ts";
import { deletionMayInvalidate, mappingProblem } from "../config/store.ts";
import { isEphemeralKey, readKvConfig, updateKvMapping, type KvConfig } from "../consensus/kv-config.ts";
import { affectsSettings, carryResolvedSettings, resolveSettingsOnce, type ClusterSettings } from "../consensus/settings.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { readLastGoodSettings, sameSettings, writeLastGoodSettings } from "./last-good-settings.ts";

/** What the config view uses of the cluster KV (etcdConfigKv adapts an etcd3 client). */
export interface ConfigKv {
  /** The whole shared config (usable keys, and those skipped); throws when the KV does not answer within `ms`. */
  read(ms: number): Promise<KvConfig>;
  /** Read-modify-write of the shared config (see updateKvMapping). */
  update(change: (m: FlatMapping) => FlatMapping, ms: number): Promise<FlatMapping>;
}

export function etcdConfigKv(client: Etcd3): ConfigKv {
  return { read: (ms) => readKvConfig(client, ms), update: (change, ms) => updateKvMapping(client, change, ms) };
}

/** How long a read of the KV is trusted without a re-read while no watch follows it from its revision (see `follow`). */
export const KV_COPY_MAX_AGE_MS = 30_000;
/**
 * How long a copy a watch follows is trusted: the watch misses nothing, so this only bounds
 * the harm of a fault nobody foresaw (a stream that stays open but silent). 10 minutes: at
 * 1 000 members, 1.7 reads a second of the config cluster-wide instead of 33.
 */
export const FOLLOWED_COPY_MAX_AGE_MS = 600_000;
/** Changes within this long of the first one are mirrored into the local cache by one write. */
export const MIRROR_DELAY_MS = 1500;

/** What the config view uses of the local config (a LocalConfig is one). */
export type LocalConfigLike = Pick<LocalConfig, "snapshot" | "update"> & { readonly store: Pick<LocalConfig["store"], "update"> };

export interface ConfigViewDeps {
  readonly local: LocalConfigLike;
  readonly log: Logger;
  readonly lastGoodSettingsPath: string;
  /** The KV when it is open and seeded (else the local cache is the config). */
  readonly kv: () => ConfigKv | undefined;
  /** The KV when it is open, seeded or not (the mirror reads it). */
  readonly openKv: () => ConfigKv | undefined;
  readonly now?: () => number;
}

/**
 * The shared config as this agent sees it: a copy of the cluster KV (kept current by the
 * watch; re-read after FOLLOWED_COPY_MAX_AGE_MS while the watch follows it from its revision, else
 * after KV_COPY_MAX_AGE_MS), else the local cache or module files;
 * writes go to the KV when it answers, else to the local cache; KV changes are mirrored into
 * the cache so the mesh keeps the newest view when the cluster becomes unreachable. Also the
 * cluster settings, with the last good value of a bad key.
 */
/**
 * The copy of the KV: `base` as read or last put together, and the watched changes since
 * (`pending`: key → value, undefined for a deletion), applied by `current()` when the copy is
 * next asked for. A change costs O(1) where a new object of the whole config (7 000 keys at
 * 1 000 members: ~2 ms, and 1 MB of garbage on every member for every `config set`) was made
 * for each; a burst of changes between two ticks costs one. `valid`: base passed mappingProblem
 * (checked at the read; kept by patches, which admit only usable keys and string values, unless
 * a deletion in a required section may have broken it).
 */
interface KvCopy {
  base: FlatMapping;
  readonly pending: Map<string, string | undefined>;
  valid: boolean;
  readonly at: number;
  readonly revision?: bigint;
}

export class ConfigView {
  private copy: KvCopy | undefined;
  /**
   * Every watched change with its revision, by key, until a read at or after that revision
   * lands: a read that was under way when a change arrived (the copy re-read after its bound, or
   * after a write) may be older than the change, and the watch delivers each change once. The
   * read's copy gets every change newer than itself; without this it would lack that change
   * for as long as the copy is trusted (10 minutes while followed). Bounded by the keys changed.
   */
  private recent = new Map<string, { value: string | undefined; revision: bigint }>();
  /** The watch delivers every change after this revision (see `follow`); undefined while none does. */
  private followedAfter: bigint | undefined;
  private mirrorTimer: NodeJS.Timeout | undefined;
  private lastGood: ClusterSettings | undefined;
  private reportedProblems = "";
  /** The unusable keys already warned about (each once while it stays in the KV). */
  private reportedUnusable = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly d: ConfigViewDeps) {
    this.now = d.now ?? Date.now;
  }

  /** The cluster KV when reachable (and seeded), else the local cache / module files. */
  async mapping(): Promise<FlatMapping> {
    const kv = this.d.kv();
    if (kv) {
      if (this.copy && this.now() - this.copy.at < (this.followed ? FOLLOWED_COPY_MAX_AGE_MS : KV_COPY_MAX_AGE_MS)) return this.current(this.copy);
      try {
        const { mapping: m, unusable, revision } = await kv.read(2000);
        this.reportUnusable(unusable);
        if (mappingProblem(m) === undefined) {
          const newer = revision === undefined ? [] : [...this.recent].filter(([, e]) => e.revision > revision);
          this.recent = new Map(newer);
          const copy: KvCopy = { base: Object.freeze(m), pending: new Map(newer.map(([key, e]) => [key, e.value])), valid: true, at: this.now(), ...(revision === undefined ? {} : { revision }) };
          this.copy = copy;
          return this.current(copy);
        }
      } catch {
        /* fall back to the cache */
      }
    }
    this.copy = undefined;
    return this.d.local.snapshot().mapping;
  }

  /** Warns once about each unusable key in the KV (skipped: never in the copy, never mirrored). */
  private reportUnusable(unusable: readonly UnusableKey[]): void {
    const now = new Set<string>();
    for (const u of unusable) {
      now.add(u.key);
      if (!this.reportedUnusable.has(u.key)) this.d.log.warn(describeUnusableKey(u));
    }
    this.reportedUnusable = now;
  }

  /**
   * The copy with its pending changes applied: a new object when there were any, carrying the
   * resolved settings over when none of the changes touched a setting. Copies are frozen: what
   * is worked out from one (settings, neighbours) is kept by object (resolveSettingsOnce,
   * readNeighbours), and a caller that tried to change the agent's copy in place would throw
   * rather than change it for every other step.
   */
  private current(c: KvCopy): FlatMapping {
    if (c.pending.size === 0) return c.base;
    const next: FlatMapping = { ...c.base };
    let settingsTouched = false;
    for (const [key, value] of c.pending) {
      if (value === undefined) {
        delete next[key];
        if (deletionMayInvalidate(key)) c.valid = false;
      } else next[key] = value;
      settingsTouched ||= affectsSettings(key);
    }
    Object.freeze(next);
    if (!settingsTouched) carryResolvedSettings(c.base, next);
    c.pending.clear();
    c.base = next;
    return next;
  }

  /** The watched copy of the KV, if there is one (no read). */
  get kvCopy(): FlatMapping | undefined {
    return this.copy && this.current(this.copy);
  }

  /** One key of the watched copy (undefined: no copy, or no such key), without putting the whole copy together. */
  copyValue(key: string): string | undefined {
    const c = this.copy;
    if (!c) return undefined;
    return c.pending.has(key) ? c.pending.get(key) : c.base[key];
  }

  /** Forget the copy: the next `mapping()` reads the KV again. */
  invalidate(): void {
    this.copy = undefined;
  }

  /** The KV revision the copy was read at; undefined without a copy (or from a KV that gave none). */
  get copyRevision(): bigint | undefined {
    return this.copy?.revision;
  }

  /**
   * A watch now delivers every change made after `revision` (it was started at revision + 1),
   * until `unfollow`: a copy read at or after it is kept current by `patch` alone and read
   * again only after FOLLOWED_COPY_MAX_AGE_MS.
   */
  follow(revision: bigint): void {
    this.followedAfter = revision;
  }

  /** The watch that followed the copy is gone (cancelled, failed, its client closed). */
  unfollow(): void {
    this.followedAfter = undefined;
  }

  /** Whether a watch follows the copy (it was read at or after the revision the watch took up from). */
  get followed(): boolean {
    return this.followedAfter !== undefined && this.copy?.revision !== undefined && this.copy.revision >= this.followedAfter;
  }

  /**
   * A watched change: the copy is patched (see KvCopy) in place of a re-read (while 50 nodes join, every
   * agent would otherwise read the whole config again for every key any of them writes); its
   * age is kept, so the re-read bound still holds. A change at or before the copy's revision
   * is already in it (a copy read again while the watch runs): applying it would put an older
   * value back until the newer event arrives. A change after it is also kept for a read under
   * way (see `recent`). Ephemeral keys are not config, nor are unusable ones (warned about
   * once; the copy stays mirrorable).
   */
  patch(type: "put" | "delete", key: string, value?: string, revision?: bigint): void {
    if (isEphemeralKey(key)) return;
    const problem = keyProblem(key);
    if (problem) {
      if (type === "delete") this.reportedUnusable.delete(key);
      else if (!this.reportedUnusable.has(key)) {
        this.reportedUnusable.add(key);
        this.d.log.warn(describeUnusableKey({ key, problem }));
      }
      return;
    }
    const c = this.copy;
    if (revision !== undefined && c?.revision !== undefined && revision <= c.revision) return;
    const v = type === "put" ? value : undefined;
    if (revision !== undefined) this.recent.set(key, { value: v, revision });
    c?.pending.set(key, v);
  }

  /**
   * The cluster settings to run with: a bad value (written past `config set`, straight into the
   * KV, or by an older version) is logged once and the last good value of that key is kept —
   * also across restarts (node/settings.json) — so a typo never stops etcd or the mesh on
   * every member at once. `members` shows the problem; `config set` fixes it.
   */
  async settings(mapping: FlatMapping): Promise<ClusterSettings> {
    this.lastGood ??= readLastGoodSettings(this.d.lastGoodSettingsPath);
    const { settings, problems } = resolveSettingsOnce(mapping, this.lastGood);
    const report = problems.map((p) => p.message).join("\n");
    if (report !== this.reportedProblems) {
      for (const p of problems) this.d.log.warn(`${p.message} This member keeps running with its last good settings meanwhile.`);
      if (!report) this.d.log.info("the cluster settings are valid again");
      this.reportedProblems = report;
    }
    if (!sameSettings(this.lastGood, settings)) {
      try {
        await writeLastGoodSettings(this.d.lastGoodSettingsPath, settings);
        this.lastGood = settings;
      } catch (e) {
        this.d.log.debug(`could not record the settings: ${errorMessage(e)}`);
      }
    }
    return settings;
  }

  /** Writes the shared config: to the KV when it answers, else to the local cache. */
  async write(change: (m: FlatMapping) => FlatMapping): Promise<void> {
    this.copy = undefined;
    const kv = this.d.kv();
    if (kv) {
      try {
        await kv.update(change, 3000);
        return;
      } catch (e) {
        this.d.log.debug(`KV write failed, writing the local cache: ${errorMessage(e)}`);
      }
    }
    await this.d.local.update(change);
  }

  /** Mirrors the KV into the local cache within MIRROR_DELAY_MS: a burst of changes costs one write. */
  scheduleMirror(): void {
    if (this.mirrorTimer) return;
    this.mirrorTimer = setTimeout(() => {
      this.mirrorTimer = undefined;
      void this.mirror();
    }, MIRROR_DELAY_MS);
    this.mirrorTimer.unref();
  }

  /** KV → local cache, so the mesh keeps the newest view when the cluster becomes unreachable. */
  async mirror(): Promise<void> {
    const kv = this.d.openKv();
    if (!kv) return;
    try {
      const c = this.copy;
      const m = c ? this.current(c) : (await kv.read(3000)).mapping;
      // The copy was checked when read and patched only with usable keys: walking 7 000 keys
      // again on every member for every change is needed only after a deletion that may have
      // broken it (the store checks again before it writes).
      if (!c?.valid) {
        if (mappingProblem(m) !== undefined) return;
        if (c?.base === m) c.valid = true;
      }
      await this.d.local.store.update(() => m, () => m);
    } catch (e) {
      this.d.log.debug(`mirror to cache: ${errorMessage(e)}`);
    }
  }

  stop(): void {
    if (this.mirrorTimer) clearTimeout(this.mirrorTimer);
  }
}
