import { Listr, ListrLogger, ProcessOutput } from "listr2";
import { errorMessage } from "../util/errors.ts";
import { printableText } from "../util/printable.ts";
import type { Job, JobResult } from "../ops/jobs.ts";

/**
 * Runs jobs with live progress on stderr (stdout stays for results): a spinner line per job on
 * a terminal, plain timestamped lines otherwise (CI, logs). A failing job does not stop the
 * others; every job's outcome is returned in the jobs' order.
 */
export async function runJobs<T>(jobs: readonly Job<T>[], opts: { concurrent: number; verbose?: boolean }): Promise<JobResult<T>[]> {
  const results: JobResult<T>[] = [];
  const processOutput = new ProcessOutput(process.stderr, process.stderr);
  // Titles and progress lines name hosts and types from the config, and relay what hosts say.
  const list = new Listr(
    jobs.map((job, i) => ({
      title: printableText(job.title),
      task: async (_ctx: unknown, task: { output: string; title: string }) => {
        const t0 = performance.now();
        const seconds = () => Math.round((performance.now() - t0) / 100) / 10;
        try {
          const value = await job.run((text) => {
            task.output = printableText(text);
          });
          results[i] = { title: job.title, ok: true, value, seconds: seconds() };
          task.title = `${printableText(job.title)} (${seconds()} s)`;
        } catch (e) {
          results[i] = { title: job.title, ok: false, error: errorMessage(e), seconds: seconds() };
          throw new Error(`${printableText(job.title)}: failed after ${seconds()} s`);
        }
      },
    })),
    {
      concurrent: opts.concurrent,
      exitOnError: false,
      registerSignalListeners: true,
      renderer: opts.verbose ? "simple" : "default",
      fallbackRenderer: "simple",
      fallbackRendererCondition: !process.stderr.isTTY,
      rendererOptions: { logger: new ListrLogger({ processOutput }), collapseErrors: true },
      fallbackRendererOptions: { logger: new ListrLogger({ processOutput }) },
    },
  );
  await list.run().catch(() => undefined);
  return jobs.map((job, i) => results[i] ?? { title: job.title, ok: false, error: "did not run", seconds: 0 });
}
