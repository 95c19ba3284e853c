import type { Command } from "commander";
import { installModule, removeModule } from "../ops/install.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("install")
    .description("load a module (owner/repo on GitHub, a git URL or a local path), or unload it with --remove")
    .argument("<name>", "owner/repo, git URL, or path of the module")
    .option("-r, --remove", "unload the module and restore the values it overrode")
    .action(async (name: string, opts: { remove?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      if (opts.remove) {
        const r = await removeModule(ctx.config, name);
        ctx.log.info(`Removed module ${r.name}: ${r.removedKeys} key(s) deleted, ${r.restoredKeys} restored to their previous values.`);
        if (r.unreadable.length > 0) {
          ctx.log.warn(
            `${r.unreadable.length} of its module file(s) could not be read (${r.unreadable.join(", ")}), so any keys they set cannot be known: those stay in the config. ` +
              "Check `raptiformica config show` and delete them with `raptiformica config delete`.",
          );
        }
        return;
      }
      const r = await installModule(ctx.config, name, ctx.log);
      ctx.log.info(`${r.replaced ? "Updated" : "Installed"} module ${r.name} in ${r.dir}: ${r.files} module file(s), ${r.keys} key(s).`);
    });
}
