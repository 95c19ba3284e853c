/**
 * The lab for humans: bring one up, poke at it with `ip netns exec`, take it down.
 *
 *   node --import tsx test/lab/cli.ts up --nodes 3 --topology line
 *   node --import tsx test/lab/cli.ts list
 *   node --import tsx test/lab/cli.ts down --id 1a2b3c
 *   node --import tsx test/lab/cli.ts cleanup [--all]
 *
 * Labs made here are persistent: they outlive this process, their state is in
 * `<base dir>/<prefix><id>/lab.json`, and only `down`, `cleanup --all` or a reboot remove them.
 */
import { parseArgs } from "node:util";
import { describeTopology, parseTopology } from "./addressing.ts";
import { cleanupStaleLabs, DEFAULT_BASE_DIR, DEFAULT_PREFIX, Lab, listLabs } from "./lab.ts";

const USAGE = `usage: node --import tsx test/lab/cli.ts <command> [options]

commands:
  up       --nodes N (default 3) --topology full|line|tree|"0-1,1-2" (default full) [--json]
  down     --id ID
  list
  cleanup  [--all]   remove labs of crashed runs; --all: every lab, also persistent and in use

common options: --prefix P (default ${DEFAULT_PREFIX}), --base-dir DIR (default ${DEFAULT_BASE_DIR})
needs root (network namespaces).`;

function fail(message: string): never {
  console.error(`lab: ${message}\n\n${USAGE}`);
  process.exit(1);
}

function quoteArg(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function up(values: Record<string, string | boolean | undefined>): Promise<void> {
  const nodes = Number(values["nodes"] ?? "3");
  const topology = parseTopology(String(values["topology"] ?? "full"));
  const lab = await Lab.create({
    nodes,
    topology,
    persistent: true,
    prefix: values["prefix"] as string | undefined,
    baseDir: values["base-dir"] as string | undefined,
  });
  if (values["json"]) {
    console.log(JSON.stringify({ id: lab.id, dir: lab.dir, stateFile: lab.stateFile, nodes: lab.nodes, links: lab.links }, null, 2));
    return;
  }
  console.log(`lab ${lab.id}: ${lab.nodes.length} nodes, topology ${describeTopology(topology)}, created in ${lab.createMs} ms`);
  console.log(`state: ${lab.stateFile}\n`);
  for (const n of lab.nodes) {
    const peers = lab.neighbours(n.index).map((j) => `n${j}`);
    console.log(`  ${n.name}  ns ${n.ns}  ${n.addresses.join(", ") || "(no address)"}  neighbours ${peers.join(" ") || "-"}`);
  }
  const first = lab.nodes[0];
  const second = lab.nodes[1];
  if (first) {
    const env = `env HOME=${quoteArg(first.home)} RAPTIFORMICA_CACHE_DIR=${quoteArg(first.cacheDir)}`;
    console.log(`\nshell in n0:   ip netns exec ${first.ns} ${env} bash`);
    if (second) console.log(`ping n0 -> n1: ip netns exec ${first.ns} ping -c1 ${lab.addressOf(1, 0)}`);
  }
  const prefixArg = values["prefix"] ? ` --prefix ${quoteArg(String(values["prefix"]))}` : "";
  console.log(`take it down:  node --import tsx test/lab/cli.ts down --id ${lab.id}${prefixArg}`);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      nodes: { type: "string" },
      topology: { type: "string" },
      id: { type: "string" },
      prefix: { type: "string" },
      "base-dir": { type: "string" },
      all: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined) {
    console.log(USAGE);
    return;
  }
  if (positionals.length > 1) fail(`unexpected argument ${JSON.stringify(positionals[1])}`);
  const prefix = values.prefix ?? DEFAULT_PREFIX;
  switch (command) {
    case "up":
      return up(values);
    case "down": {
      if (!values.id) fail("down needs --id ID");
      const lab = Lab.open(values.id, { prefix, baseDir: values["base-dir"] });
      await lab.destroy();
      console.log(`lab ${lab.id} removed`);
      return;
    }
    case "list": {
      const labs = await listLabs(prefix);
      if (labs.length === 0) console.log("no labs");
      for (const l of labs) {
        console.log(`${l.id}  owner ${l.owner}  ${l.namespaces.length} namespaces  ${l.labDir ?? "(no dir)"}`);
      }
      return;
    }
    case "cleanup": {
      const removed = await cleanupStaleLabs(prefix, { all: values.all ?? false });
      console.log(removed.length > 0 ? `removed ${removed.join(", ")}` : "nothing to remove");
      const kept = await listLabs(prefix);
      if (kept.length > 0) console.log(`kept (in use or persistent; --all removes them): ${kept.map((l) => l.id).join(", ")}`);
      return;
    }
    default:
      fail(`unknown command ${JSON.stringify(command)}`);
  }
}

main().catch((e: unknown) => {
  console.error(`lab: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
