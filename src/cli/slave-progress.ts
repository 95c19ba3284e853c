import type { SpawnProgress } from "../ops/spawn.ts";
import { stepLabel } from "../ops/step-labels.ts";

/** Turns slave/spawn steps into the one-line status a progress display shows. */
export function progressReporter(report: (text: string) => void): SpawnProgress {
  return (step, detail) => report(stepLabel(step, detail));
}
