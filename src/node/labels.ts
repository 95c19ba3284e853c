import { readFileSync } from "node:fs";
import { machine } from "node:os";

/**
 * The `ID` of an os-release file's text (`debian`, `ubuntu`, `alpine` …), unquoted; undefined
 * when it has none. Pure; throws nothing.
 */
export function osReleaseId(text: string): string | undefined {
  for (const line of text.split("\n")) {
    const m = /^ID=(.*)$/.exec(line.trim());
    if (!m) continue;
    const v = (m[1] ?? "").trim().replace(/^["']|["']$/g, "");
    return v || undefined;
  }
  return undefined;
}

let cached: Record<string, string> | undefined;

/**
 * This machine's built-in job labels (consensus/labels.ts): `arch` as `uname -m` says it
 * (x86_64, aarch64 …) and `distribution`, the `ID` of /etc/os-release (left out when it cannot
 * be read). Read once per process. Throws nothing.
 */
export function builtInLabels(osRelease = "/etc/os-release"): Record<string, string> {
  if (cached) return cached;
  const labels: Record<string, string> = { arch: machine() };
  try {
    const id = osReleaseId(readFileSync(osRelease, "utf8"));
    if (id) labels["distribution"] = id;
  } catch {
    /* no os-release: no distribution label */
  }
  cached = labels;
  return labels;
}
