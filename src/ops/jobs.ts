/** One unit of long-running work shown as a live line (per host for deploy, one for slave/spawn). */
export interface Job<T> {
  readonly title: string;
  run(report: (text: string) => void): Promise<T>;
}

/** How a job ended, in seconds of wall time; a failed job carries its error's message. */
export type JobResult<T> =
  | { readonly title: string; readonly ok: true; readonly value: T; readonly seconds: number }
  | { readonly title: string; readonly ok: false; readonly error: string; readonly seconds: number };
