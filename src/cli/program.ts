import { Command } from "commander";

// For main.ts, which loads the CLI dynamically (see the lint rule on dynamic imports).
export { CommanderError } from "commander";
import * as advertise from "./advertise.ts";
import * as agent from "./agent.ts";
import * as clean from "./clean.ts";
import * as config from "./config.ts";
import * as deploy from "./deploy.ts";
import * as destroy from "./destroy.ts";
import * as hook from "./hook.ts";
import * as inject from "./inject.ts";
import * as job from "./job.ts";
import * as install from "./install.ts";
import * as join from "./join.ts";
import * as links from "./links.ts";
import * as map from "./map.ts";
import * as members from "./members.ts";
import * as mesh from "./mesh.ts";
import * as migrateMesh from "./migrate-mesh.ts";
import * as pkg from "./package.ts";
import * as prune from "./prune.ts";
import * as recover from "./recover.ts";
import * as slave from "./slave.ts";
import * as spawn from "./spawn.ts";
import * as ssh from "./ssh.ts";

import { VERSION } from "./version.ts";
import * as identity from "./identity.ts";

/** Every command of the original, under its original name, plus `config`, `identity`, `job`, `links`, `map`, `recover` and `migrate-mesh`. */
const COMMANDS = [spawn, slave, deploy, join, pkg, prune, destroy, install, inject, members, links, job, map, ssh, clean, advertise, mesh, agent, hook, config, identity, recover, migrateMesh];

export function buildProgram(): Command {
  const program = new Command("raptiformica")
    .description("Turn scattered machines into one self-healing cluster: a Yggdrasil mesh with etcd consensus.")
    .version(VERSION, "--version", "print the version")
    .option("-v, --verbose", "log debug messages")
    .option("-c, --cache-dir <dir>", "state directory, relative to $HOME unless absolute (env RAPTIFORMICA_CACHE_DIR; default .raptiformica.d)")
    .option("--strict", "treat problems in module files as errors instead of skipping those files")
    .showHelpAfterError(true)
    .configureHelp({ sortSubcommands: false });
  for (const command of COMMANDS) command.register(program);
  program.commands.forEach((c) => c.showHelpAfterError());
  return program;
}
