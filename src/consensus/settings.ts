import { KEY_ROOT, type FlatMapping } from "../config/flatten.ts";
import { MESH_MAJOR_KEY, meshMajorProblem } from "../mesh/neighbours.ts";
import { LINKS_PREFIX } from "./links.ts";
import { MESH_PASSWORD_KEY, meshPasswordProblem } from "../mesh/yggdrasil/password.ts";
import { UserError } from "../util/errors.ts";

export const KEYS = {
  yggdrasilPort: `${KEY_ROOT}/meshnet/yggdrasil/port`,
  agentPort: `${KEY_ROOT}/meshnet/agent/port`,
  mapPort: `${KEY_ROOT}/meshnet/map/port`,
  clientPort: `${KEY_ROOT}/meshnet/etcd/client_port`,
  peerPort: `${KEY_ROOT}/meshnet/etcd/peer_port`,
  maxVoters: `${KEY_ROOT}/meshnet/etcd/max_voters`,
  nodeTtl: `${KEY_ROOT}/meshnet/etcd/node_ttl`,
  deadVoterGrace: `${KEY_ROOT}/meshnet/etcd/dead_voter_grace`,
  heartbeatMs: `${KEY_ROOT}/meshnet/etcd/heartbeat_ms`,
  electionMs: `${KEY_ROOT}/meshnet/etcd/election_ms`,
  evictAfter: `${KEY_ROOT}/meshnet/evict_after`,
  caCert: `${KEY_ROOT}/meshnet/etcd/ca_cert`,
  caKey: `${KEY_ROOT}/meshnet/etcd/ca_key`,
  clusterToken: `${KEY_ROOT}/meshnet/etcd/cluster_token`,
  neighbours: `${KEY_ROOT}/meshnet/neighbours/`,
  /** Live, lease-backed node records: never mirrored into the local cache. */
  nodes: `${KEY_ROOT}/nodes/`,
  /** Each member's report of its mesh links, on its node record's lease (links.ts): never mirrored either. */
  links: LINKS_PREFIX,
  /** The voter manager's log of membership changes (last ones), shown by `members`. */
  voterLog: `${KEY_ROOT}/voters/log`,
  /** When each gone neighbour was first seen gone (ms since epoch), for eviction. */
  gone: `${KEY_ROOT}/gone/`,
  /** Held (under a short lease) by the one member restarting its etcd for an upgraded program. */
  restartClaim: `${KEY_ROOT}/restarting/etcd`,
  /** Jobs: specs, runs, claims on members' leases (jobs.ts); never mirrored into a local cache. */
  jobs: `${KEY_ROOT}/jobs/`,
} as const;

export interface ClusterSettings {
  readonly yggdrasilPort: number;
  /** The agent's liveness port on the mesh address: proxies probe their voters there (node/probe-listener.ts). */
  readonly agentPort: number;
  /** The mesh map's HTTP port on 127.0.0.1 and the mesh address (ops/map/server.ts), read-only. */
  readonly mapPort: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly maxVoters: number;
  readonly nodeTtlSeconds: number;
  /** How long a voter's node record must be gone before the leader replaces it. */
  readonly deadVoterGraceSeconds: number;
  /** How long a neighbour must be gone (failed or left) before it is evicted. */
  readonly evictAfterSeconds: number;
  /** etcd's raft timing: raise both for members far apart (heartbeat ≈ the worst round trip). */
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

/** One numeric cluster setting: its key, default and the range etcd / the agent can work with. */
interface NumericSetting {
  readonly field: keyof ClusterSettings;
  readonly key: string;
  readonly fallback: number;
  readonly min: number;
  readonly max: number;
}

/** Every numeric setting under `meshnet/`, with the rules `config set`, `install` and the agent share. */
const NUMERIC: readonly NumericSetting[] = [
  { field: "yggdrasilPort", key: KEYS.yggdrasilPort, fallback: 4863, min: 1, max: 65535 },
  { field: "agentPort", key: KEYS.agentPort, fallback: 4864, min: 1, max: 65535 },
  { field: "mapPort", key: KEYS.mapPort, fallback: 4865, min: 1, max: 65535 },
  { field: "clientPort", key: KEYS.clientPort, fallback: 2379, min: 1, max: 65535 },
  { field: "peerPort", key: KEYS.peerPort, fallback: 2380, min: 1, max: 65535 },
  { field: "maxVoters", key: KEYS.maxVoters, fallback: 5, min: 1, max: 99 },
  { field: "nodeTtlSeconds", key: KEYS.nodeTtl, fallback: 5, min: 2, max: 600 },
  { field: "deadVoterGraceSeconds", key: KEYS.deadVoterGrace, fallback: 3, min: 0, max: 86_400 },
  { field: "evictAfterSeconds", key: KEYS.evictAfter, fallback: 3600, min: 0, max: 365 * 86_400 },
  { field: "heartbeatMs", key: KEYS.heartbeatMs, fallback: 100, min: 10, max: 5000 },
  { field: "electionMs", key: KEYS.electionMs, fallback: 1000, min: 50, max: 50_000 },
];

/** The folders of `meshnet/` whose direct keys are all settings raptiformica reads (a typo there is silently ignored otherwise). */
const MESHNET = `${KEY_ROOT}/meshnet/`;
const SETTING_FOLDERS = new Set([MESHNET, `${MESHNET}etcd/`, `${MESHNET}yggdrasil/`, `${MESHNET}agent/`, `${MESHNET}map/`]);
const KNOWN_KEYS = new Set<string>([...NUMERIC.map((n) => n.key), KEYS.caCert, KEYS.caKey, KEYS.clusterToken, MESH_MAJOR_KEY, MESH_PASSWORD_KEY]);

/** Whether `key` sits directly in one of SETTING_FOLDERS (one prefix test for the ~7 000 neighbour keys). */
function inSettingFolder(key: string): boolean {
  return key.startsWith(MESHNET) && SETTING_FOLDERS.has(key.slice(0, key.lastIndexOf("/") + 1));
}

/**
 * Whether a change of `key` can change what resolveSettings returns: the known settings and
 * every key directly in a setting folder (unknown ones there are reported). A mapping changed
 * only in other keys — neighbour entries, module keys, an app's keys — resolves as before.
 */
export function affectsSettings(key: string): boolean {
  return KNOWN_KEYS.has(key) || inSettingFolder(key);
}

/** A cluster setting whose value cannot be used, with the sentence that says so and how to fix it. */
export interface SettingProblem {
  /** The key to fix (for a collision of two keys, the one set away from its default). */
  readonly key: string;
  readonly value: string | undefined;
  /** Every key involved (two for a collision): what a module file would have to change. */
  readonly keys: readonly string[];
  /** What is wrong, in one sentence, without the fix. */
  readonly what: string;
  /** How to fix it with `config set`/`config delete` (on a member or an operator machine). */
  readonly fix: string;
  /** `what` and `fix` together. */
  readonly message: string;
}

function problem(key: string, value: string | undefined, what: string, fix: string, keys: readonly string[] = [key]): SettingProblem {
  return { key, value, keys, what, fix, message: `${what} ${fix}` };
}

/**
 * Ports a member needs for something else, so no setting may take them: the operator reaches
 * every member over SSH on 22 (`slave`, `members` from an operator machine, `ssh`), and sshd
 * cannot share it with yggdrasil or etcd.
 */
const RESERVED_PORTS: ReadonlyMap<number, string> = new Map([[22, "sshd's port, which the operator needs to reach every member"]]);

/**
 * The ports one member listens on: yggdrasil on every address (tcp://[::]), etcd's client port
 * on the mesh address and 127.0.0.1 (a proxy's on 127.0.0.1), its peer port and the agent's
 * liveness port on the mesh address, the map's HTTP port on both. Two of them on one number:
 * the second to start fails with "address already in use".
 */
const PORT_FIELDS = ["clientPort", "peerPort", "yggdrasilPort", "agentPort", "mapPort"] as const;

/** The defaults: what a cluster runs with when no module or `config set` says otherwise. */
export const DEFAULT_SETTINGS: ClusterSettings = Object.fromEntries(NUMERIC.map((n) => [n.field, n.fallback])) as unknown as ClusterSettings;

function parseNumeric(mapping: FlatMapping, n: NumericSetting): { value: number } | { problem: SettingProblem } | undefined {
  const raw = mapping[n.key];
  if (raw === undefined) return undefined;
  // Plain decimal digits only: Number() would also take " 5", "5.0", "1e1" and "0x5", which
  // other readers of the KV (etcdctl users, scripts, older versions) would not read as 5.
  const v = /^[0-9]{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(v) || v < n.min || v > n.max) {
    return { problem: problem(n.key, raw, `Config key ${n.key} is "${raw}", but it must be a whole number from ${n.min} to ${n.max}.`, setFix(n.key)) };
  }
  return { value: v };
}

function setFix(key: string, value = "<value>"): string {
  return `Fix it with \`raptiformica config set ${key} ${value}\`.`;
}

/**
 * The closest known key to a mistyped one, for "did you mean": the nearest last part, and of
 * those equally near, one in the same folder (several folders have a `port`).
 */
function nearestKey(key: string): string | undefined {
  const cut = key.lastIndexOf("/") + 1;
  const [folder, leaf] = [key.slice(0, cut), key.slice(cut)];
  let best: { key: string; score: number } | undefined;
  for (const k of KNOWN_KEYS) {
    const kCut = k.lastIndexOf("/") + 1;
    const d = editDistance(leaf, k.slice(kCut));
    const score = 2 * d + (k.slice(0, kCut) === folder ? 0 : 1);
    if (d <= 3 && (!best || score < best.score)) best = { key: k, score };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] as number;
}

/**
 * Every problem with the cluster settings in `mapping` (`meshnet/…`, neighbour entries aside):
 * numbers out of range or not plain decimal numbers, ports that collide with each other or
 * with a port the node needs (RESERVED_PORTS), an election timeout under 5 heartbeats (etcd
 * refuses to start, on every member at once), and unknown keys in raptiformica's own setting
 * folders (a typo that would otherwise be ignored without a word). The one set of rules behind
 * `config set`, `install`, the agent and `members`.
 */
export function settingProblems(mapping: FlatMapping): SettingProblem[] {
  return resolveSettings(mapping).problems;
}

const keyOf = (field: keyof ClusterSettings): string => (NUMERIC.find((n) => n.field === field) as NumericSetting).key;

/** The ports of `s` (PORT_FIELDS) are distinct and none is reserved. */
function portsUsable(s: ClusterSettings): boolean {
  const ports = PORT_FIELDS.map((f) => s[f]);
  return new Set(ports).size === ports.length && ports.every((p) => !RESERVED_PORTS.has(p));
}

/**
 * The settings to run with and the problems found. A key with a bad value takes its value from
 * `lastGood` (what this node last ran with), else its default: a bad value in the KV never
 * stops a member, it keeps running as before and reports the problem. Rules that tie keys
 * together fall back together: two ports on one number take all the ports from `lastGood`
 * (the pair alone could still collide with the third), heartbeat and election likewise.
 * Never throws.
 */
export function resolveSettings(mapping: FlatMapping, lastGood: ClusterSettings = DEFAULT_SETTINGS): { settings: ClusterSettings; problems: SettingProblem[] } {
  const settings: Record<string, number> = {};
  const problems: SettingProblem[] = [];
  for (const n of NUMERIC) {
    const parsed = parseNumeric(mapping, n);
    if (parsed && "problem" in parsed) problems.push(parsed.problem);
    settings[n.field] = parsed === undefined ? n.fallback : "value" in parsed ? parsed.value : lastGood[n.field];
  }
  for (const field of PORT_FIELDS) {
    const port = settings[field] as number;
    const use = RESERVED_PORTS.get(port);
    if (use === undefined) continue;
    const key = keyOf(field);
    problems.push(problem(key, mapping[key], `Config key ${key} is ${port}, but that is ${use}: nothing else on a member may listen there.`, setFix(key, String(DEFAULT_SETTINGS[field]))));
    settings[field] = lastGood[field];
  }
  let collided = false;
  for (let i = 0; i < PORT_FIELDS.length; i++) {
    for (let j = i + 1; j < PORT_FIELDS.length; j++) {
      const [a, b] = [PORT_FIELDS[i] as (typeof PORT_FIELDS)[number], PORT_FIELDS[j] as (typeof PORT_FIELDS)[number]];
      if (settings[a] !== settings[b]) continue;
      collided = true;
      const [ka, kb] = [keyOf(a), keyOf(b)];
      // The key to change is the one moved away from its default (both: the later one).
      const key = mapping[kb] !== undefined && Number(mapping[kb]) !== DEFAULT_SETTINGS[b] ? kb : mapping[ka] !== undefined ? ka : kb;
      const field = key === ka ? a : b;
      const other = key === ka ? b : a;
      const free = DEFAULT_SETTINGS[field] !== settings[other] ? DEFAULT_SETTINGS[field] : "<another port>";
      problems.push(
        problem(
          key,
          mapping[key],
          `Config keys ${ka} and ${kb} are both ${settings[a]}: a member listens on each of them, so etcd or yggdrasil would fail with "address already in use".`,
          setFix(key, String(free)),
          [ka, kb],
        ),
      );
    }
  }
  if (collided) {
    const back = portsUsable(lastGood) ? lastGood : DEFAULT_SETTINGS;
    for (const f of PORT_FIELDS) settings[f] = back[f];
  }
  const heartbeatMs = settings["heartbeatMs"] as number;
  const electionMs = settings["electionMs"] as number;
  // etcd refuses to start otherwise: every member would fail at once.
  if (electionMs < 5 * heartbeatMs) {
    problems.push(
      problem(
        KEYS.electionMs,
        mapping[KEYS.electionMs],
        `Config key ${KEYS.electionMs} is ${electionMs} but ${KEYS.heartbeatMs} is ${heartbeatMs}: etcd needs the election timeout to be at least 5 heartbeats (10 is usual).`,
        `Raise ${KEYS.electionMs} (\`raptiformica config set ${KEYS.electionMs} ${10 * heartbeatMs}\`) or lower the heartbeat.`,
        [KEYS.electionMs, KEYS.heartbeatMs],
      ),
    );
    settings["heartbeatMs"] = lastGood.heartbeatMs;
    settings["electionMs"] = lastGood.electionMs;
  }
  const majorProblem = meshMajorProblem(mapping[MESH_MAJOR_KEY]);
  if (majorProblem) problems.push(problem(MESH_MAJOR_KEY, mapping[MESH_MAJOR_KEY], majorProblem, "Set it with `raptiformica migrate-mesh`, or remove it with `raptiformica config delete " + MESH_MAJOR_KEY + "`."));
  const passwordProblem = meshPasswordProblem(mapping[MESH_PASSWORD_KEY]);
  if (passwordProblem) problems.push(problem(MESH_PASSWORD_KEY, mapping[MESH_PASSWORD_KEY], passwordProblem, `Set a new one (e.g. \`raptiformica config set ${MESH_PASSWORD_KEY} "$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"\`): every member restarts yggdrasil with it.`));
  // Only the keys in setting folders are sorted (for a stable order of the problems): a mapping
  // holds every member's neighbour entries, 7 000 keys at 1 000 members, and this runs on
  // every agent tick.
  const unknown: string[] = [];
  for (const key in mapping) if (!KNOWN_KEYS.has(key) && inSettingFolder(key)) unknown.push(key);
  for (const key of unknown.sort()) {
    const near = nearestKey(key);
    problems.push(
      problem(key, mapping[key], `Config key ${key} is not a setting raptiformica knows, so it has no effect.${near ? ` Did you mean ${near}?` : ""}`, `Remove it with \`raptiformica config delete ${key}\`.`),
    );
  }
  return { settings: settings as unknown as ClusterSettings, problems };
}

const resolvedFor = new WeakMap<FlatMapping, { lastGood: ClusterSettings; result: ReturnType<typeof resolveSettings> }>();

/**
 * resolveSettings, computed once per frozen mapping object and last good settings (the config
 * view's copies are frozen; a watched change makes a new one); a mapping that is not frozen may
 * be changed in place and is resolved afresh. An agent resolves the settings on every tick, and
 * a mapping holds every member's neighbour entries (7 000 keys at 1 000 members). The result is
 * shared: callers must not change it.
 */
export function resolveSettingsOnce(mapping: FlatMapping, lastGood: ClusterSettings = DEFAULT_SETTINGS): ReturnType<typeof resolveSettings> {
  if (!Object.isFrozen(mapping)) return resolveSettings(mapping, lastGood);
  const hit = resolvedFor.get(mapping);
  if (hit && hit.lastGood === lastGood) return hit.result;
  const result = resolveSettings(mapping, lastGood);
  resolvedFor.set(mapping, { lastGood, result });
  return result;
}

/**
 * Lets `to` (frozen) share what resolveSettingsOnce computed for `from`: for a mapping made from `from`
 * by changes to keys none of which affectsSettings (the config view's copy after watched
 * changes to neighbour entries), so a copy of 7 000 keys is not resolved again for each one.
 * Does nothing when `from` was never resolved.
 */
export function carryResolvedSettings(from: FlatMapping, to: FlatMapping): void {
  const hit = resolvedFor.get(from);
  if (hit) resolvedFor.set(to, hit);
}

/** The cluster settings in `mapping`; bad values fall back as in resolveSettings. Never throws. */
export function clusterSettings(mapping: FlatMapping, lastGood?: ClusterSettings): ClusterSettings {
  return resolveSettings(mapping, lastGood).settings;
}

/**
 * The problems `after` has that `before` did not: what a write (`config set`/`delete`, a module
 * being installed) would introduce. A problem already there does not block the write, so a bad
 * value can always be fixed while another one is still bad.
 */
export function newSettingProblems(before: FlatMapping, after: FlatMapping): SettingProblem[] {
  const old = new Set(settingProblems(before).map((p) => p.message));
  return settingProblems(after).filter((p) => !old.has(p.message));
}

/** Throws UserError when a write would introduce setting problems (see newSettingProblems); `what` names the write. */
export function refuseNewSettingProblems(before: FlatMapping, after: FlatMapping, what: string): void {
  const problems = newSettingProblems(before, after);
  if (problems.length === 0) return;
  throw new UserError(`${what} was refused, nothing was changed: ${problems.map((p) => p.message).join(" ")}`);
}

/**
 * How many voters a cluster of `members` nodes should have: the largest odd number not above
 * the member count, capped at `maxVoters` (itself rounded down to odd). Even voter counts add
 * no fault tolerance and make a split vote possible.
 */
export function targetVoters(members: number, maxVoters: number): number {
  if (members <= 0) return 0;
  const cap = maxVoters % 2 === 0 ? maxVoters - 1 : maxVoters;
  const odd = members % 2 === 0 ? members - 1 : members;
  return Math.max(1, Math.min(cap, odd));
}
