import { printableText } from "./printable.ts";

/**
 * Plain log lines on stderr, so stdout stays clean for data (tables, JSON, config values).
 * Messages often embed names and values from the KV, or output of a handler or a host: control
 * characters in them are escaped (newlines kept), so a log line cannot drive the terminal or
 * forge other lines of the agent's log file.
 */
export interface Logger {
  readonly verbose: boolean;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/**
 * A logger writing lines to `write` (stderr by default). `timestamps`: each line begins with
 * the ISO time (UTC, ms) — for the agent's own log file; journald and terminals add their own.
 */
export function createLogger(verbose: boolean, write: (line: string) => void = (l) => process.stderr.write(l), timestamps = false): Logger {
  if (timestamps) {
    const inner = write;
    write = (l) => inner(`${new Date().toISOString()} ${l}`);
  }
  return {
    verbose,
    debug: (m) => {
      if (verbose) write(`${printableText(m)}\n`);
    },
    info: (m) => write(`${printableText(m)}\n`),
    warn: (m) => write(`warning: ${printableText(m)}\n`),
  };
}
