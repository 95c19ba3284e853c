/**
 * The errors a command can end with, and the exit code each one gives (BSD sysexits where one
 * fits). src/main.ts is the one place that maps them to output:
 *
 * - `UserError` (exit 1, or the code it carries): the user can act on it. Its message is one
 *   paragraph naming the file, key or host involved and what to do; printed without a stack.
 * - `KeyNotSet` (exit 66, EX_NOINPUT), a UserError: `config get`/`config delete` of a key that
 *   is not set. Its own code so that a script, or an operator machine running `config delete`
 *   on a member over SSH, can tell "nothing there" from a failure without reading the message.
 * - `ClusterUnavailable` (exit 75, EX_TEMPFAIL): a cluster call got no answer in time (no
 *   quorum, a member starved or cut off); the same command may work later. etcd3's own
 *   transport errors count too (consensus/client.ts `isClusterUnavailable`).
 * - anything else (exit 70, EX_SOFTWARE): a bug here, printed with its stack.
 *
 * Callers tell errors apart by class (and a subclass's typed fields), never by message text:
 * messages are for people and may be reworded.
 */
export const EXIT_USER = 1;
export const EXIT_INTERNAL = 70;
export const EXIT_KEY_NOT_SET = 66;
export const EXIT_CLUSTER_UNAVAILABLE = 75;

/**
 * An error the user can act on: its message is one paragraph naming the file, key or host
 * involved and what to do. The CLI prints the message (no stack) and exits with `exitCode`.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USER,
  ) {
    super(message);
    this.name = "UserError";
  }
}

/**
 * The config key asked for (`key`, normalized) is not set, so there was nothing to read or
 * delete; exit {@link EXIT_KEY_NOT_SET}. The message says so and what to do.
 */
export class KeyNotSet extends UserError {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message, EXIT_KEY_NOT_SET);
    this.name = "KeyNotSet";
  }
}

/**
 * A call to the cluster that got no answer in time. Subclasses name the call (see
 * consensus/client.ts `DeadlineExceeded`); the CLI explains how to check quorum and exits 75.
 * Lives here, below every layer, so the CLI's top level recognises it without loading the etcd
 * client.
 */
export class ClusterUnavailable extends Error {
  readonly exitCode = EXIT_CLUSTER_UNAVAILABLE;
  constructor(message: string) {
    super(message);
    this.name = "ClusterUnavailable";
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
