import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const BIN = join(ROOT, "bin", "raptiformica");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A throwaway $HOME; the cache dir defaults to `<home>/.raptiformica.d`. */
export interface Sandbox {
  home: string;
  cache: string;
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number }): Promise<CliResult>;
  cleanup(): void;
}

export function sandbox(): Sandbox {
  const home = mkdtempSync(join(tmpdir(), "rf-test-"));
  const cache = join(home, ".raptiformica.d");
  // A member made here (mesh, agent) keeps its member names in the sandbox, not this host's /etc/hosts.
  const baseEnv: NodeJS.ProcessEnv = { PATH: process.env["PATH"], HOME: home, LANG: "C.UTF-8", RAPTIFORMICA_HOSTS_FILE: join(home, "hosts") };
  return {
    home,
    cache,
    async run(args, opts = {}) {
      // Runs the built bundle through bin/raptiformica: the artifact that ships.
      const r = await execa(BIN, args, {
        env: { ...baseEnv, ...opts.env },
        extendEnv: false,
        cwd: opts.cwd ?? home,
        reject: false,
        timeout: opts.timeout ?? 60_000,
      });
      return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    cleanup() {
      rmSync(home, { recursive: true, force: true });
    },
  };
}
