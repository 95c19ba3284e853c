import type { Command } from "commander";
import { recover } from "../ops/recover.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  program
    .command("recover")
    .description("after quorum is lost for good, restart the cluster from this surviving voter (etcd --force-new-cluster)")
    .option("--force", "recover from here even if a reachable voter has newer data")
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const r = await recover(ctx, opts);
      ctx.log.info(
        `recovered: this member is now the only voter (its data, raft index ${r.raftIndex}). The other members rejoin as they come back, and the voter manager grows the voter set again.`,
      );
    });
}
