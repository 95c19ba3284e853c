import process from "node:process";

/**
 * A node:test reporter that prints nothing while the tests run and, at the end, one block per
 * failed test: its name, file and line, and the first lines of its error (cause included).
 * `npm test` runs it beside the TAP reporter so that the end of a long run's output — which is
 * what a CI log keeps when it is cut — says what failed and why, not only how many.
 */
const MAX_LINES = 40;

function errorText(error) {
  if (!error) return "(no error recorded)";
  const cause = error.cause ?? error;
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return text;
}

function clip(text) {
  const lines = text.split("\n");
  return lines.length <= MAX_LINES ? lines : [...lines.slice(0, MAX_LINES), `… (${lines.length - MAX_LINES} more lines)`];
}

export default async function* failureSummary(source) {
  const failures = [];
  // The names of the suites the current test is in, by nesting level (events arrive in order).
  const path = [];
  for await (const event of source) {
    if (event.type === "test:start") path[event.data.nesting] = event.data.name;
    if (event.type !== "test:fail") continue;
    const d = { ...event.data, suites: path.slice(0, event.data.nesting) };
    // A suite fails when one of its tests does; the test's own block says why.
    if (d.details?.type === "suite") continue;
    failures.push(d);
  }
  if (failures.length === 0) return;
  let out = `\n# ── ${failures.length} failed test(s), each with its error ──\n`;
  for (const d of failures) {
    const where = d.file ? `${d.file.replace(process.cwd() + "/", "")}:${d.line ?? "?"}` : "(file unknown)";
    out += `#\n# FAILED: ${[...d.suites, d.name].join(" › ")}\n#   at ${where}\n`;
    for (const line of clip(errorText(d.details?.error))) out += `#   | ${line}\n`;
  }
  yield out;
}
