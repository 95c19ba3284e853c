import type { Command } from "commander";
import { NotAvailableYet } from "../util/errors.ts";

export function register(program: Command): void {
  program
    .command("members")
    .description("show the cluster members and their state")
    .option("-r, --rejoin", "run one reconcile of this member now (what the cluster_change hook does)")
    .option("--evict", "remove members that have been gone longer than the eviction grace period")
    .option("--json", "print JSON")
    .action(() => {
      throw new NotAvailableYet("members");
    });
}
