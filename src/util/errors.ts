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

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
