import type { Command } from "commander";
import { fireHook } from "../hooks/runner.ts";
import { typeStatuses } from "../config/types.ts";
import { ensureAgent, prepareNode, waitForReady } from "../ops/node.ts";
import { contextFrom } from "./context.ts";
import { runningAgent } from "../node/agent-lock.ts";
import { parsePositiveInt } from "./options.ts";

export function register(program: Command): void {
  program
    .command("mesh")
    .description("configure and start the mesh and consensus on this machine, then make sure the agent runs")
    .option("--no-after-mesh", "do not fire the after_mesh hook")
    .option("--timeout <seconds>", "how long to wait for this node to be ready", parsePositiveInt, 120)
    .action(async (opts: { afterMesh: boolean; timeout: number }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const since = Date.now();
      const { identity, info } = await prepareNode(ctx.paths, ctx.config);
      ctx.log.debug(`node ${identity.publicKey} (${identity.address}), yggdrasil ${info.version}`);
      const agent = await ensureAgent(ctx.paths);
      ctx.log.debug(agent.started ? `started the agent (pid ${agent.pid})` : `the agent runs (pid ${agent.pid})`);
      if (!agent.started && agent.pid > 0) process.kill(agent.pid, "SIGUSR1");
      const status = await waitForReady(ctx.node, opts.timeout * 1000, since, agent.log, {
        runs: () => runningAgent(ctx.node) !== undefined,
        current: () => runningAgent(ctx.node),
        restart: async () => {
          const again = await ensureAgent(ctx.paths);
          ctx.log.info(`No agent ran for this node: started it again (pid ${again.pid}).`);
        },
      });
      ctx.log.info(`meshed: ${identity.address} (${status.role ?? "member"})`);
      if (!opts.afterMesh) return;
      const { mapping } = ctx.config.snapshot();
      const platform = (await typeStatuses(mapping, "platform", ctx.probe)).find((s) => s.available)?.name;
      if (!platform) return;
      const report = await fireHook(
        mapping,
        platform,
        { hook: "after_mesh", time: new Date().toISOString(), publicKey: identity.publicKey, meshAddress: identity.address },
        { installDir: ctx.installDir, cacheDir: ctx.paths.root, log: ctx.log, live: true },
      );
      if (report.outcomes.some((o) => o.status === "failed")) process.exitCode = 1;
    });
}
