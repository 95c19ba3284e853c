/** Plain log lines on stderr, so stdout stays clean for data (tables, JSON, config values). */
export interface Logger {
  readonly verbose: boolean;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export function createLogger(verbose: boolean, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    verbose,
    debug: (m) => {
      if (verbose) write(`${m}\n`);
    },
    info: (m) => write(`${m}\n`),
    warn: (m) => write(`warning: ${m}\n`),
  };
}
