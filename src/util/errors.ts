/**
 * An error the user can act on: its message is one paragraph naming the file, key or host
 * involved and what to do. The CLI prints the message (no stack) and exits with `exitCode`.
 * Anything else that reaches the top is a bug and is printed with its stack.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = "UserError";
  }
}

/** A command whose implementation has not landed yet: never pretend success. */
export class NotAvailableYet extends UserError {
  constructor(command: string) {
    super(`${command}: not available yet in this version of raptiformica (exit 2 means "not implemented", never success).`, 2);
    this.name = "NotAvailableYet";
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
