import { closeSync, openSync, readSync } from "node:fs";
import type { Etcd3 } from "etcd3";
import { UserError } from "../../util/errors.ts";
import type { JobAnswer, RunView } from "../cluster/job-wire.ts";
import { showLocal } from "./jobs.ts";
import { jobLogFile } from "./runner.ts";

/**
 * The run `job logs` shows: the one with id `run`, else the latest started.
 * @throws UserError naming the job's runs when there is no such run, or none yet.
 */
export function pickRun(job: JobAnswer, run?: string): RunView {
  if (run !== undefined) {
    const r = job.runs.find((x) => x.id === run);
    if (!r) throw new UserError(`Job ${job.name} has no run ${run}; its runs: ${job.runs.map((x) => x.id).join(", ") || "none yet"}.`);
    return r;
  }
  const latest = [...job.runs].sort((a, b) => a.startedAt - b.startedAt).at(-1);
  if (!latest) throw new UserError(`Job ${job.name} has no runs yet; \`raptiformica job show ${job.name}\` says what it waits for.`);
  return latest;
}

/** Reads what `file` holds from byte `from` on; an absent file reads as nothing yet. */
function readFrom(file: string, from: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(64 * 1024);
    let at = from;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, at);
      if (n <= 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      at += n;
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/**
 * `job logs NAME` on a member: the whole log of a run (`--run`, else the latest) when this
 * member ran it (`<node>/log/jobs/<job>/<run>.log`), written to `out`; with `follow`, what the
 * command writes next too, until its run has ended (the KV is asked once a second). A run of
 * another member: its output tail from the KV, and `note` says where the whole log is (members
 * have no path to each other's files). Returns once done.
 * @throws UserError when there is no such job or run; DeadlineExceeded when the KV does not answer.
 */
export async function jobLogsLocal(
  client: Etcd3,
  name: string,
  o: { run?: string; follow?: boolean; logDir: string; self?: string; out: (b: Buffer | string) => void; note: (s: string) => void; pollMs?: number },
): Promise<void> {
  const job = await showLocal(client, name);
  const run = pickRun(job, o.run);
  if (run.publicKey !== o.self) {
    o.out(run.outputTail ?? "");
    o.note(
      `This is the last 4 KiB of run ${run.id} from the KV; its whole log is on member ${run.member}, in <cache>/node/log/jobs/${name}/${run.id}.log there: ` +
        `\`raptiformica ssh ${run.member} -- raptiformica job logs ${name} --run ${run.id}${o.follow ? " --follow" : ""}\` prints it.`,
    );
    return;
  }
  const file = jobLogFile(o.logDir, name, run.id);
  let at = 0;
  const drain = () => {
    const b = readFrom(file, at);
    at += b.length;
    if (b.length > 0) o.out(b);
  };
  drain();
  if (!o.follow) return;
  const poll = o.pollMs ?? 250;
  let lastAsk = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, poll));
    drain();
    if (Date.now() - lastAsk < 1000) continue;
    lastAsk = Date.now();
    const now = (await showLocal(client, name)).runs.find((r) => r.id === run.id);
    if (!now || now.outcome !== "running") {
      drain();
      return;
    }
  }
}
