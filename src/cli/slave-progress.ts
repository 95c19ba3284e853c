import type { SpawnProgress } from "../ops/spawn.ts";

const LABELS: Record<Parameters<SpawnProgress>[0], string> = {
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

/** Turns slave/spawn steps into the one-line status a progress display shows. */
export function progressReporter(report: (text: string) => void): SpawnProgress {
  return (step, detail) => report(detail ? `${LABELS[step]}: ${detail}` : LABELS[step]);
}
