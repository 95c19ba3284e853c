import type { Command } from "commander";
import { keyProblem, keysUnder, normalizeKey, sortMapping, type FlatMapping } from "../config/flatten.ts";
import { typeStatuses, type TypeKind } from "../config/types.ts";
import { UserError } from "../util/errors.ts";
import { contextFrom } from "./context.ts";
import type { Context } from "../ops/context.ts";
import { SharedConfig } from "../node/shared-config.ts";
import { existsSync } from "node:fs";
import { memberTargets, onFirstMember } from "../ops/via-member.ts";
import { remoteCommand, sshSettings } from "../remote/settings.ts";
import { refuseNewConfigProblems } from "../ops/config-checks.ts";
import { jsonText, printable, printableText } from "../util/printable.ts";

/**
 * On an operator machine (not a member) that knows members, config commands are answered by
 * the first reachable member: the cluster's KV is the truth, not this machine's old copy.
 * Returns true when the command was forwarded (its output and exit code passed through).
 */
async function forwarded(ctx: Context, argv: string[]): Promise<boolean> {
  if (existsSync(ctx.node.nodeCert)) return false;
  const { mapping } = ctx.config.snapshot();
  if (memberTargets(mapping).length === 0) return false;
  const { out } = await onFirstMember(() => sshSettings(ctx.paths, ctx.log), mapping, [remoteCommand(mapping), "config", ...argv]);
  // What a member prints is data, never terminal control: escaped like this machine's own
  // listings, except `config get`'s value, which stays exactly as stored (for scripts).
  process.stdout.write(argv[0] === "get" ? out.stdout : printableText(out.stdout));
  process.stderr.write(printableText(out.stderr));
  process.exitCode = out.exitCode;
  return true;
}

/** The cluster KV when this machine is a member and it answers, else the local config. */
async function withShared<T>(ctx: Context, fn: (shared: SharedConfig) => Promise<T>): Promise<T> {
  const shared = await SharedConfig.open(ctx.config, ctx.node, ctx.log);
  try {
    return await fn(shared);
  } finally {
    shared.close();
  }
}

/**
 * The shared config for a read (`show`, `get`, `types`). On a member whose KV did not answer,
 * one line on stderr says the answer is this member's cached copy; stdout is the same.
 */
async function readShared(ctx: Context): Promise<FlatMapping> {
  return withShared(ctx, async (shared) => {
    const { mapping } = await shared.snapshot();
    if (shared.memberUnreachable) {
      ctx.log.warn(`the cluster KV did not answer on this member: this is the member's cached copy of the shared config (${ctx.config.paths.mutableConfig}), which may be out of date.`);
    }
    return mapping;
  });
}

/** A key that would be both a value and a folder cannot be represented in the module format. */
function conflictFor(mapping: FlatMapping, key: string): string | undefined {
  const below = keysUnder(mapping, key).filter((k) => k !== key);
  if (below.length > 0) return `${key} already has ${below.length} key(s) below it (e.g. ${below[0]})`;
  const parts = key.split("/");
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join("/");
    if (mapping[parent] !== undefined) return `${parent} already holds a value`;
  }
  return undefined;
}

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
      if (await forwarded(ctx, ["show", ...(prefix !== undefined ? [prefix] : []), ...(opts.json ? ["--json"] : [])])) return;
      const mapping = await readShared(ctx);
      const keys = prefix === undefined ? Object.keys(mapping).sort() : keysUnder(mapping, normalizeKey(prefix));
      if (prefix !== undefined && keys.length === 0) {
        throw new UserError(`No config keys under ${normalizeKey(prefix)}. See \`raptiformica config show\` for all keys.`);
      }
      const selected: FlatMapping = {};
      for (const k of keys) selected[k] = mapping[k] as string;
      if (opts.json) {
        process.stdout.write(`${jsonText(sortMapping(selected))}\n`);
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
      if (await forwarded(ctx, ["get", key])) return;
      const k = normalizeKey(key);
      const mapping = await readShared(ctx);
      const value = mapping[k];
      if (value === undefined) {
        const below = keysUnder(mapping, k).length;
        const hint = below > 0 ? ` It is a folder of ${below} key(s): see \`raptiformica config show ${k}\`.` : "";
        throw new UserError(`Config key ${k} is not set.${hint}`);
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
      if (await forwarded(ctx, ["set", key, value])) return;
      const k = normalizeKey(key);
      const problem = keyProblem(k);
      if (problem) throw new UserError(`Cannot set config key "${key}": ${problem}.`);
      await withShared(ctx, (s) => s.update((m) => {
        const conflict = conflictFor(m, k);
        if (conflict) throw new UserError(`Cannot set config key ${k}: ${conflict}. Delete it first with \`raptiformica config delete --recursive\`.`);
        const after = { ...m, [k]: value };
        refuseNewConfigProblems(m, after, `Setting ${k} to ${JSON.stringify(value)}`);
        return after;
      }));
      ctx.log.debug(`set ${k}`);
    });

  config
    .command("delete")
    .description("delete KEY (with --recursive: KEY and every key below it)")
    .argument("<key>", "config key or prefix")
    .option("-r, --recursive", "delete every key below KEY too")
    .action(async (key: string, opts: { recursive?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      if (await forwarded(ctx, ["delete", key, ...(opts.recursive ? ["--recursive"] : [])])) return;
      const k = normalizeKey(key);
      await withShared(ctx, (s) => s.update((m, kv) => {
        const targets = opts.recursive ? keysUnder(m, k) : m[k] !== undefined ? [k] : [];
        // Keys in the KV no config can hold (`a b`, `x//y`) are deleted by their exact name,
        // or with the folder they are in: this is how they are removed.
        const unusable = kv.unusable.map((u) => u.key).filter((u) => (opts.recursive ? u === k || u.startsWith(`${k}/`) : u === k || u === key));
        for (const u of unusable) kv.drop(u);
        if (targets.length === 0 && unusable.length === 0) {
          const below = keysUnder(m, k).length;
          const hint = below > 0 && !opts.recursive ? ` It has ${below} key(s) below it; add --recursive to delete them all.` : "";
          throw new UserError(`Config key ${k} is not set; nothing was deleted.${hint}`);
        }
        const after = { ...m };
        for (const t of targets) delete after[t];
        // Deleting a setting brings back its default, which may not fit the others (heartbeat vs election).
        refuseNewConfigProblems(m, after, `Deleting ${k}`);
        ctx.log.debug(`deleted ${targets.length + unusable.length} key(s)`);
        return after;
      }));
    });

  config
    .command("types")
    .description("list server, compute and platform types and whether each is available here")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const mapping = await readShared(ctx);
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
