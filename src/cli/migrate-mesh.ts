import { InvalidArgumentError, type Command } from "commander";
import { migrateMesh } from "../ops/migrate-mesh.ts";
import { jsonText } from "../util/printable.ts";
import { contextFrom } from "./context.ts";

/** Only forward: the stock bootstrap never downgrades a host's Yggdrasil 0.5 to 0.4. */
function major(v: string): "0.5" {
  if (v === "0.5") return v;
  throw new InvalidArgumentError("give 0.5: a cluster moves from Yggdrasil 0.4 to 0.5, not back.");
}

function seconds(v: string): number {
  const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 10) throw new InvalidArgumentError("give a whole number of seconds, 10 or more.");
  return n;
}

export function register(program: Command): void {
  program
    .command("migrate-mesh")
    .description("move a running cluster to another Yggdrasil major (0.4 → 0.5): install it on every member, then switch all at once")
    .option("--to <major>", "the Yggdrasil major to move to", major, "0.5" as const)
    .option("--server-type <type>", "server type whose provisioners install Yggdrasil on the members", "headless")
    .option("--timeout <seconds>", "how long to wait, after the switch, for every member to be alive again", seconds, 180)
    .option("--json", "print the result as JSON")
    .action(async (opts: { to: "0.5"; serverType: string; timeout: number; json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await migrateMesh(ctx, { to: opts.to, serverType: opts.serverType, timeoutMs: opts.timeout * 1000, progress: (line) => ctx.log.info(line) });
      if (opts.json) {
        process.stdout.write(`${jsonText(r)}\n`);
        return;
      }
      if (r.already) {
        process.stdout.write(`every member already runs Yggdrasil ${r.to}: nothing to do\n`);
        return;
      }
      const back = r.backAfterMs === undefined ? "" : `; every member was alive again ${(r.backAfterMs / 1000).toFixed(1)} s after the switch`;
      process.stdout.write(`migrated ${r.members.length} member(s) to Yggdrasil ${r.to}${back}\n`);
    });
}
