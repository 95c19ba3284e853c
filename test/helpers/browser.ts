import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { ROOT } from "./cli.ts";

/** Debian's chromium, which the map's tests and benchmark drive (scripts/test.sh installs it). */
export const CHROMIUM = process.env["RAPTIFORMICA_CHROMIUM"] ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined: they skip with this reason. */
export function browserMissing(): string | undefined {
  if (!existsSync(CHROMIUM)) return `needs chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (!existsSync(join(ROOT, "dist", "map", "map.js"))) return "needs the built page (npm run build)";
  return undefined;
}

/**
 * Headless chromium, optionally inside network namespace `netns` (a lab node: its 127.0.0.1 is
 * that node's), through a wrapper script: playwright talks to it over a pipe, which crosses the
 * namespace. Root runs it, hence --no-sandbox.
 */
export async function launchChromium(o: { netns?: string } = {}): Promise<Browser> {
  let executablePath = CHROMIUM;
  if (o.netns) {
    if (!/^[A-Za-z0-9_.-]+$/.test(o.netns)) throw new Error(`not a namespace name: ${o.netns}`);
    const dir = mkdtempSync(join(tmpdir(), "rf-chromium-"));
    executablePath = join(dir, "chromium-in-netns");
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${o.netns} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  }
  return chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}

/** Where the map's tests keep their screenshots (gitignored): test-artifacts/map/. */
export function artifactsDir(): string {
  const dir = join(ROOT, "test-artifacts", "map");
  mkdirSync(dir, { recursive: true });
  return dir;
}
