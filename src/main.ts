import { ClusterUnavailable, EXIT_CLUSTER_UNAVAILABLE, EXIT_INTERNAL, UserError } from "./util/errors.ts";
import { signalRunningChildren } from "./util/exec.ts";
import { printableText } from "./util/printable.ts";

// `raptiformica config show | head` closes our stdout early: that is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

/** An etcd call that timed out or found no server: the cluster's state, not a bug here. */
async function isClusterUnavailable(e: unknown): Promise<boolean> {
  if (!(e instanceof Error)) return false;
  if (e instanceof ClusterUnavailable) return true;
  try {
    return (await import("./consensus/client.ts")).isClusterUnavailable(e);
  } catch {
    // The error handler must report the original error, whatever happens here.
    return false;
  }
}

/**
 * Resolves once everything written to `stream` so far has been handed to the OS. Writes to a
 * pipe that is full are queued in the process; `process.exit` would drop them (output cut at
 * the pipe's 64 KiB buffer, exit 0). Callbacks of writes run in order, so an empty write's
 * callback marks the end of the queue.
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    stream.write("", () => resolve());
  });
}

/**
 * Ctrl-C (or a TERM/HUP) ends the command and what it started: hook handlers, compute and
 * package commands run in process groups of their own, which the terminal's signal does not
 * reach, so it is passed on to them before exiting 128+n.
 */
function passSignalsToChildren(): void {
  for (const [sig, n] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const) {
    process.once(sig, () => {
      signalRunningChildren(sig);
      process.exit(128 + n);
    });
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 3 && argv[2] === "agent") {
    // How `mesh` and the systemd unit start the agent: skip loading the CLI (see run-agent.ts);
    // cli/agent.ts loads no command but its own.
    const { runMemberAgent } = await import("./cli/agent.ts");
    await runMemberAgent({ verbose: false });
    return;
  }
  passSignalsToChildren();
  const { buildProgram, CommanderError } = await import("./cli/program.ts");
  const program = buildProgram();
  if (argv.length <= 2) {
    // No command: help on stderr, exit 1 (as the original dispatcher did).
    program.outputHelp({ error: true });
    process.exitCode = 1;
    return;
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof UserError) {
      // Messages name keys, values and hosts from the config: control characters escaped.
      process.stderr.write(`raptiformica: ${printableText(e.message)}\n`);
      process.exitCode = e.exitCode;
    } else if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
    } else if (await isClusterUnavailable(e)) {
      // Not a bug: the cluster did not answer in time (no quorum, a member starved or cut off).
      process.stderr.write(
        `raptiformica: the cluster's etcd did not answer (${printableText(e instanceof Error ? e.message : String(e))}). ` +
          "Run `raptiformica members` to see whether the cluster has quorum (it says what to do if not), then try again; a write that timed out may still have been applied.\n",
      );
      process.exitCode = EXIT_CLUSTER_UNAVAILABLE;
    } else {
      process.stderr.write(`raptiformica: internal error (this is a bug, please report it):\n${printableText(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
      process.exitCode = EXIT_INTERNAL;
    }
  }
}

await main(process.argv);
// A command is done when its action returns: do not linger for gRPC channels or timers that
// an abandoned (timed-out) etcd call left behind — but only once all its output is out.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(process.exitCode ?? 0);
