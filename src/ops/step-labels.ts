import type { SpawnProgress } from "./spawn.ts";

export type Step = Parameters<SpawnProgress>[0];

const LABELS: Record<Step, string> = {
  start_instance: "starting the instance",
  after_start_instance: "instance started",
  connect: "connecting",
  upload: "copying raptiformica",
  provision: "provisioning",
  after_slave: "after_slave hook",
  register: "registering with the cluster",
  mesh: "joining the mesh",
  after_assimilate: "after_assimilate hook",
  done: "done",
};

/**
 * The words a progress line shows for a spawn/slave step (`slave`, `spawn`, `deploy`).
 * Pure; throws nothing.
 */
export function stepLabel(step: Step, detail?: string): string {
  return detail ? `${LABELS[step]}: ${detail}` : LABELS[step];
}
