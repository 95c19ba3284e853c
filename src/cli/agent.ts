import type { Command } from "commander";
import { Agent } from "../node/agent.ts";
import { acquireAgentLock } from "../node/agent-lock.ts";
import { contextFrom } from "./context.ts";
import { VERSION } from "./version.ts";

export function register(program: Command): void {
  program
    .command("agent")
    .description("run the reconcile loop that keeps this member in the cluster (started by `mesh`)")
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const lock = acquireAgentLock(ctx.node.agentPid);
      if (!lock.ok) {
        ctx.log.info(`An agent already runs for this node (pid ${lock.pid}).`);
        return;
      }
      const agent = new Agent({ cache: ctx.paths, node: ctx.node, installDir: ctx.installDir, log: ctx.log, local: ctx.config, version: VERSION });
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        void agent.stop();
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      process.on("SIGUSR1", () => agent.poke());
      ctx.log.info(`agent started (pid ${process.pid})`);
      try {
        await agent.run();
      } finally {
        lock.release();
      }
    });
}
