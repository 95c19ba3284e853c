import { delimiter, join } from "node:path";
import type { FlatMapping } from "../config/flatten.ts";
import { runShell } from "../util/exec.ts";
import type { Logger } from "../util/log.ts";
import { hookHandlers } from "./handlers.ts";

/** What a handler receives: on stdin as JSON, and in RAPTIFORMICA_EVENT. */
export interface HookEvent {
  readonly hook: string;
  readonly time: string;
  readonly [field: string]: unknown;
}

export type HandlerOutcome =
  | { readonly handler: string; readonly status: "ran"; readonly exitCode: 0 }
  | { readonly handler: string; readonly status: "failed"; readonly exitCode: number; readonly timedOut: boolean }
  | { readonly handler: string; readonly status: "skipped"; readonly predicateExitCode: number };

export interface HookReport {
  readonly hook: string;
  readonly platformType: string;
  readonly outcomes: readonly HandlerOutcome[];
}

export interface HookRunnerOptions {
  readonly installDir: string;
  readonly cacheDir: string;
  readonly log: Logger;
  readonly predicateTimeoutMs?: number;
  readonly commandTimeoutMs?: number;
  /** Stream handler output to ours (CLI) or capture it (agent). */
  readonly live?: boolean;
}

export function hookEnv(event: HookEvent, opts: HookRunnerOptions): NodeJS.ProcessEnv {
  return {
    ...process.env,
    RAPTIFORMICA_HOOK: event.hook,
    RAPTIFORMICA_EVENT: JSON.stringify(event),
    RAPTIFORMICA_CACHE_DIR: opts.cacheDir,
    RAPTIFORMICA_HOME: opts.installDir,
    // Handlers call `raptiformica …` and get this very install.
    PATH: [join(opts.installDir, "bin"), process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"].join(delimiter),
  };
}

/**
 * Fires every handler of `event.hook`: predicate, then command, both `sh -c` in the install
 * dir, one at a time in handler-name order. A failing handler does not stop the others; the
 * report says which failed and how.
 */
export async function fireHook(mapping: FlatMapping, platformType: string, event: HookEvent, opts: HookRunnerOptions): Promise<HookReport> {
  const handlers = hookHandlers(mapping, platformType, event.hook);
  const env = hookEnv(event, opts);
  const input = `${JSON.stringify(event)}\n`;
  const outcomes: HandlerOutcome[] = [];
  for (const h of handlers) {
    const pred = await runShell(h.predicate, { cwd: opts.installDir, env, input, timeoutMs: opts.predicateTimeoutMs ?? 30_000 });
    if (pred.exitCode !== 0) {
      opts.log.debug(`hook ${event.hook}: handler ${h.name} skipped (predicate exited ${pred.exitCode})`);
      outcomes.push({ handler: h.name, status: "skipped", predicateExitCode: pred.exitCode });
      continue;
    }
    opts.log.debug(`hook ${event.hook}: running handler ${h.name}`);
    const res = await runShell(h.command, {
      cwd: opts.installDir,
      env,
      input,
      timeoutMs: opts.commandTimeoutMs ?? 1_200_000,
      live: opts.live ?? false,
    });
    if (res.exitCode === 0) {
      outcomes.push({ handler: h.name, status: "ran", exitCode: 0 });
    } else {
      const why = res.timedOut ? "timed out" : `exited ${res.exitCode}`;
      const detail = !opts.live && res.stderr.trim() ? `: ${res.stderr.trim().split("\n").slice(-3).join(" | ")}` : "";
      opts.log.warn(`hook ${event.hook}: handler ${h.name} ${why}${detail}`);
      outcomes.push({ handler: h.name, status: "failed", exitCode: res.exitCode, timedOut: res.timedOut });
    }
  }
  return { hook: event.hook, platformType, outcomes };
}
