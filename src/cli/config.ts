import type { Command } from "commander";
import { keysUnder, normalizeKey, sortMapping, type FlatMapping } from "../config/flatten.ts";
import { typeStatuses, type TypeKind } from "../config/types.ts";
import { clusterFor } from "../ops/cluster/cluster.ts";
import { LocalCluster } from "../ops/cluster/local.ts";
import type { ConfigAnswer } from "../ops/cluster/wire.ts";
import { KeyNotSet, UserError } from "../util/errors.ts";
import { jsonText, printable } from "../util/printable.ts";
import { contextFrom } from "./context.ts";

export function register(program: Command): void {
  const config = program
    .command("config")
    .description("show and change the shared config (this machine's mutable config)");

  config
    .command("show")
    .description("print config keys and values, optionally only those under PREFIX")
    .argument("[prefix]", "key prefix, e.g. raptiformica/server (the raptiformica/ part may be left out)")
    .option("--json", "print a JSON object of key → value")
    .action(async (prefix: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const mapping = await clusterFor(ctx).readConfig();
      const keys = prefix === undefined ? Object.keys(mapping).sort() : keysUnder(mapping, normalizeKey(prefix));
      if (prefix !== undefined && keys.length === 0) {
        throw new UserError(`No config keys under ${normalizeKey(prefix)}. See \`raptiformica config show\` for all keys.`);
      }
      const selected: FlatMapping = {};
      for (const k of keys) selected[k] = mapping[k] as string;
      if (opts.json) {
        const answer: ConfigAnswer = sortMapping(selected);
        process.stdout.write(`${jsonText(answer)}\n`);
      } else {
        // Multi-line values and terminal controls are shown escaped, as JSON strings.
        for (const k of keys) process.stdout.write(`${printable(k)} = ${printable(selected[k] as string)}\n`);
      }
    });

  config
    .command("get")
    .description("print the value of KEY")
    .argument("<key>", "config key, e.g. raptiformica/meshnet/etcd/max_voters")
    .action(async (key: string, _opts: unknown, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const k = normalizeKey(key);
      const mapping = await clusterFor(ctx).readConfig();
      const value = mapping[k];
      if (value === undefined) {
        const below = keysUnder(mapping, k).length;
        const hint = below > 0 ? ` It is a folder of ${below} key(s): see \`raptiformica config show ${k}\`.` : "";
        throw new KeyNotSet(k, `Config key ${k} is not set.${hint}`);
      }
      // Exactly as stored, for scripts (`x=$(raptiformica config get KEY)`); `config show`
      // is the one to look at a value that may hold terminal controls.
      process.stdout.write(`${value}\n`);
    });

  config
    .command("set")
    .description("set KEY to VALUE")
    .argument("<key>", "config key")
    .argument("<value>", "value (stored as a string)")
    .action(async (key: string, value: string, _opts: unknown, cmd: Command) => {
      const ctx = contextFrom(cmd);
      await clusterFor(ctx).setConfig(key, value);
    });

  config
    .command("delete")
    .description("delete KEY (with --recursive: KEY and every key below it)")
    .argument("<key>", "config key or prefix")
    .option("-r, --recursive", "delete every key below KEY too")
    .action(async (key: string, opts: { recursive?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      await clusterFor(ctx).deleteConfig(key, opts);
    });

  config
    .command("types")
    .description("list server, compute and platform types and whether each is available here")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const mapping = await new LocalCluster(ctx).readConfig();
      const kinds: TypeKind[] = ["server", "compute", "platform"];
      const result: Record<string, { name: string; available: boolean; default: boolean }[]> = {};
      for (const kind of kinds) {
        const statuses = await typeStatuses(mapping, kind, ctx.probe);
        const firstAvailable = statuses.find((s) => s.available)?.name;
        result[kind] = statuses.map((s) => ({ ...s, default: s.name === firstAvailable }));
      }
      if (opts.json) {
        process.stdout.write(`${jsonText(result)}\n`);
        return;
      }
      for (const kind of kinds) {
        const list = result[kind] ?? [];
        const shown = list.map((t) => `${printable(t.name)}${t.default ? " (default)" : ""}${t.available ? "" : " (not available here)"}`);
        process.stdout.write(`${kind}: ${shown.join(", ") || "none"}\n`);
      }
    });
}
