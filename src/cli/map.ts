import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import type { Command } from "commander";
import { openMapTunnel } from "../ops/map/tunnel.ts";
import { UserError } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import { contextFrom } from "./context.ts";

/**
 * The program that opens a URL in the user's browser here, or why there is none: `open` on
 * macOS; elsewhere `xdg-open`, and only in a graphical session (DISPLAY or WAYLAND_DISPLAY:
 * over SSH without one it would start a text browser in the terminal, or nothing).
 * `has(name)` says whether a program is on PATH. Pure.
 */
export function browserCommand(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, has: (name: string) => boolean): { argv0: string } | { why: string } {
  if (platform === "darwin") return has("open") ? { argv0: "open" } : { why: "`open` is not on PATH" };
  if (!env["DISPLAY"] && !env["WAYLAND_DISPLAY"]) return { why: "this session has no graphical display (DISPLAY, WAYLAND_DISPLAY)" };
  return has("xdg-open") ? { argv0: "xdg-open" } : { why: "`xdg-open` is not on PATH (apt-get install xdg-utils)" };
}

function onPath(name: string): boolean {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

function openBrowser(url: string, log: Logger): void {
  const how = browserCommand(process.platform, process.env, onPath);
  if ("why" in how) {
    log.info(`not opening a browser: ${how.why}; open ${url} yourself`);
    return;
  }
  const child = spawn(how.argv0, [url], { stdio: "ignore", detached: true });
  child.on("error", (e) => log.warn(`could not start ${how.argv0} (${e.message}); open ${url} yourself`));
  child.unref();
}

function portOption(v: string): number {
  const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new UserError(`--port must be a port number from 1 to 65535, got "${v}".`);
  return n;
}

export function register(program: Command): void {
  program
    .command("map")
    .description("show the mesh map: forward a local port over SSH to the first reachable member's map, print its URL, keep the tunnel until interrupted")
    .option("--open", "also open it in your browser (where there is one)")
    .option("--port <n>", "the local port (default: the cluster's map port when free here, else any free one)", portOption)
    .action(async (opts: { open?: boolean; port?: number }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const tunnel = await openMapTunnel(ctx, opts.port !== undefined ? { port: opts.port } : {});
      // On Ctrl-C or a TERM the CLI exits (main.ts): the tunnel goes with it.
      process.once("exit", () => tunnel.close());
      // The URL is the first line of stdout, for scripts; everything else goes to stderr.
      process.stdout.write(`${tunnel.url}\n`);
      if (tunnel.member === "this member") {
        ctx.log.info("this machine is a member: its agent serves the map here");
        if (opts.open) openBrowser(tunnel.url, ctx.log);
        return;
      }
      ctx.log.info(`the map of ${tunnel.member}, through an SSH tunnel; Ctrl-C closes it`);
      if (opts.open) openBrowser(tunnel.url, ctx.log);
      const why = await tunnel.ended;
      throw new UserError(`The tunnel to ${tunnel.member} closed (${why}). Run \`raptiformica map\` again to open one to a member that answers.`);
    });
}
