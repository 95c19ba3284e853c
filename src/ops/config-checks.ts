import type { FlatMapping } from "../config/flatten.ts";
import { KEYS, settingProblems } from "../consensus/settings.ts";
import { readNeighbours } from "../mesh/neighbours.ts";
import { remoteCommandProblem } from "../remote/settings.ts";
import { UserError } from "../util/errors.ts";

/** One thing wrong with a config mapping: the key and one sentence (what is wrong, what to do). */
export interface ConfigProblem {
  readonly key: string;
  /** Every key involved (two when keys collide): what a module file would have to change. */
  readonly keys: readonly string[];
  /** What is wrong, without how to fix it. */
  readonly what: string;
  /** What is wrong and how to fix it with `config` commands. */
  readonly message: string;
}

/**
 * Every problem of `mapping` that the code using it would meet: cluster settings
 * (`meshnet/...`, consensus/settings.ts), neighbour entries (hosts and ports yggdrasil cannot
 * use, mesh/neighbours.ts) and the remote launcher (remote/settings.ts). The same functions
 * that later use the values judge them here, so a value refused on the way in is exactly one
 * that would be skipped (with a warning) where it is used. Pure; throws nothing.
 */
export function configProblems(mapping: FlatMapping): ConfigProblem[] {
  const launcher = remoteCommandProblem(mapping);
  return [
    ...settingProblems(mapping).map((p) => ({ key: p.key, keys: p.keys, what: p.what, message: p.message })),
    ...readNeighbours(mapping).problems.map((p) => ({ key: p.key, keys: [p.key], what: p.message, message: p.message })),
    ...(launcher ? [{ key: "raptiformica/remote/command", keys: ["raptiformica/remote/command"], what: launcher, message: launcher }] : []),
  ];
}

/**
 * The cluster CA (`meshnet/etcd/ca_cert`, `ca_key`) is made once, by the first node, and is
 * the cluster's identity (cluster-id.ts): every member's etcd certificate comes from it. A
 * write that replaces or removes it would leave every member unable to reach the others. The
 * etcd cluster token is written once too, by the node that bootstraps etcd.
 */
function caChangeProblems(before: FlatMapping, after: FlatMapping): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const key of [KEYS.caCert, KEYS.caKey]) {
    if (before[key] !== undefined && after[key] !== before[key]) {
      const what = `${key} is the cluster CA, made once by the first node; every member's etcd certificate comes from it, so it cannot be changed or deleted.`;
      problems.push({ key, keys: [key], what, message: `${what} A new cluster starts from machines that were \`clean\`ed (on an operator: \`destroy\`, or another cache dir).` });
    }
  }
  // The etcd cluster token says a cluster exists: without it a node that cannot reach a
  // member yet (and has the lowest key) would bootstrap a second etcd cluster.
  const token = KEYS.clusterToken;
  if (before[token] !== undefined && after[token] !== before[token]) {
    const what = `${token} names the etcd cluster the members formed; it is written once by the node that bootstraps it, and cannot be changed or deleted (a node without it may start a second cluster).`;
    problems.push({ key: token, keys: [token], what, message: what });
  }
  return problems;
}

/**
 * @throws UserError when the write from `before` to `after` (`config set`/`delete`, a module
 * being installed) would add a problem ({@link configProblems}); `what` names the write. A
 * problem already there does not block the write, so a bad value can always be fixed while
 * another is still bad. `describe` words a problem for the write at hand (a module names its
 * file and key rather than `config set`); by default the problem's own message. Replacing or
 * deleting the cluster CA is refused too.
 */
export function refuseNewConfigProblems(before: FlatMapping, after: FlatMapping, what: string, describe: (p: ConfigProblem) => string = (p) => p.message): void {
  const old = new Set(configProblems(before).map((p) => p.message));
  const added = [...configProblems(after).filter((p) => !old.has(p.message)), ...caChangeProblems(before, after)];
  if (added.length === 0) return;
  throw new UserError(`${what} was refused, nothing was changed: ${added.map(describe).join(" ")}`);
}
