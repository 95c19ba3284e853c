import { childEnv } from "../config/child-env.ts";
import type { FlatMapping } from "../config/flatten.ts";
import { runShell } from "../util/exec.ts";
import type { Logger } from "../util/log.ts";
import { hookHandlers } from "./handlers.ts";
import { printable } from "../util/printable.ts";

/** What a handler receives: on stdin as JSON, and in RAPTIFORMICA_EVENT while it fits there. */
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

const EVENT_VAR = "RAPTIFORMICA_EVENT";

/**
 * The longest event JSON (in bytes) that is also copied into RAPTIFORMICA_EVENT. Linux refuses
 * to start a program with any single environment string ("NAME=value" and its NUL) over
 * MAX_ARG_STRLEN = 32 pages = 131 072 bytes (E2BIG); a bigger event (a cluster_change batch of
 * ~1 300 keys) goes to the handlers on stdin only.
 */
export const ENV_EVENT_MAX_BYTES = 131_072 - `${EVENT_VAR}=`.length - 1;

/**
 * The environment of a handler: ours plus RAPTIFORMICA_HOOK, RAPTIFORMICA_EVENT (left out when
 * the event is over ENV_EVENT_MAX_BYTES), RAPTIFORMICA_CACHE_DIR, RAPTIFORMICA_HOME, and the
 * install's bin/ first on PATH.
 */
export function hookEnv(event: HookEvent, opts: HookRunnerOptions): NodeJS.ProcessEnv {
  const json = JSON.stringify(event);
  const env = childEnv(opts, { RAPTIFORMICA_HOOK: event.hook });
  // An inherited copy from an outer hook must not pose as this event's.
  delete env[EVENT_VAR];
  if (Buffer.byteLength(json) <= ENV_EVENT_MAX_BYTES) env[EVENT_VAR] = json;
  return env;
}

/**
 * Fires every handler of `event.hook`: predicate, then command, both `sh -c` in the install
 * dir, one at a time in handler-name order, each with the whole event on stdin. A handler is
 * done when its shell exits (work it put in the background runs on and delays nothing). A
 * failing handler, or one that cannot be started, does not stop the others; the report says
 * which failed and how.
 */
export async function fireHook(mapping: FlatMapping, platformType: string, event: HookEvent, opts: HookRunnerOptions): Promise<HookReport> {
  const handlers = hookHandlers(mapping, platformType, event.hook);
  const env = hookEnv(event, opts);
  const input = `${JSON.stringify(event)}\n`;
  if (env[EVENT_VAR] === undefined && handlers.length > 0) {
    opts.log.debug(`hook ${event.hook}: the event is ${Buffer.byteLength(input)} bytes, too big for ${EVENT_VAR}: handlers get it on stdin only`);
  }
  const outcomes: HandlerOutcome[] = [];
  for (const h of handlers) {
    const pred = await runShell(h.predicate, { cwd: opts.installDir, env, input, timeoutMs: opts.predicateTimeoutMs ?? 30_000 });
    if (pred.failedToStart !== undefined) {
      opts.log.warn(`hook ${event.hook}: handler ${printable(h.name)} could not be started (${pred.failedToStart})`);
      outcomes.push({ handler: h.name, status: "failed", exitCode: pred.exitCode, timedOut: false });
      continue;
    }
    if (pred.exitCode !== 0) {
      opts.log.debug(`hook ${event.hook}: handler ${printable(h.name)} skipped (predicate exited ${pred.exitCode})`);
      outcomes.push({ handler: h.name, status: "skipped", predicateExitCode: pred.exitCode });
      continue;
    }
    opts.log.debug(`hook ${event.hook}: running handler ${printable(h.name)}`);
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
      const why = res.failedToStart !== undefined ? `could not be started (${res.failedToStart})` : res.timedOut ? "timed out" : `exited ${res.exitCode}`;
      const detail = !opts.live && res.stderr.trim() ? `: ${res.stderr.trim().split("\n").slice(-3).join(" | ")}` : "";
      opts.log.warn(`hook ${event.hook}: handler ${printable(h.name)} ${why}${detail}`);
      outcomes.push({ handler: h.name, status: "failed", exitCode: res.exitCode, timedOut: res.timedOut });
    }
  }
  return { hook: event.hook, platformType, outcomes };
}
