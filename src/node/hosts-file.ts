import { readFileSync, renameSync, rmSync, statSync, writeFileSync, chownSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Neighbour } from "../mesh/neighbours.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";

/**
 * Member names on every member: the agent keeps one block of /etc/hosts — between these two
 * lines, nothing outside them is ever changed — mapping each member's name to its mesh
 * address, so `ssh root@<member name>` works from one member to another. A file rather than a
 * resolver: every libc and tool reads it, and there is no daemon to run or port to take.
 */
export const HOSTS_BEGIN = "# BEGIN raptiformica: member names on the mesh (kept by the agent; edit outside this block)";
export const HOSTS_END = "# END raptiformica";

/** A host name as /etc/hosts takes it (RFC 1123 labels, 253 characters at most): names from the KV go into a system file only if they are this. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export interface HostEntry {
  readonly address: string;
  readonly name: string;
}

/**
 * The block's entries for `neighbours` (pure): every member that has not left and has a name,
 * by name. Left out, and named in `skipped` with why: a name that is no host name (it could not
 * go into /etc/hosts safely) and a name two members share (it would resolve to either).
 */
export function memberHostEntries(neighbours: readonly Neighbour[]): { entries: HostEntry[]; skipped: string[] } {
  const skipped: string[] = [];
  const byName = new Map<string, HostEntry[]>();
  for (const n of neighbours) {
    if (n.left || n.name === undefined) continue;
    if (!HOST_NAME.test(n.name)) {
      skipped.push(`${JSON.stringify(n.name)} (${n.meshAddress}): not a host name`);
      continue;
    }
    const key = n.name.toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), { address: n.meshAddress, name: n.name }]);
  }
  const entries: HostEntry[] = [];
  for (const [name, list] of byName) {
    if (list.length === 1) entries.push(list[0] as HostEntry);
    else skipped.push(`${name}: the name of ${list.length} members (${list.map((e) => e.address).join(", ")})`);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { entries, skipped };
}

/**
 * `text` (a hosts file) with raptiformica's block holding `entries` (pure): the block replaced
 * where it is, else added at the end; removed when `entries` is empty. Every line outside the
 * block is kept as it was. A block whose end line is missing (a damaged file) is taken to run
 * to the end of the file.
 */
export function withMemberBlock(text: string, entries: readonly HostEntry[]): string {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const begin = lines.indexOf(HOSTS_BEGIN);
  let outside = lines;
  let at = lines.length;
  if (begin >= 0) {
    const end = lines.indexOf(HOSTS_END, begin + 1);
    outside = [...lines.slice(0, begin), ...(end >= 0 ? lines.slice(end + 1) : [])];
    at = begin;
  }
  const block = entries.length === 0 ? [] : [HOSTS_BEGIN, ...entries.map((e) => `${e.address}\t${e.name}`), HOSTS_END];
  const out = [...outside.slice(0, at), ...block, ...outside.slice(at)];
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

/**
 * The hosts file the agent keeps: RAPTIFORMICA_HOSTS_FILE when set ("none": none at all; the
 * lab gives each node its own), else /etc/hosts.
 */
export function hostsFilePath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env["RAPTIFORMICA_HOSTS_FILE"];
  if (v === "none") return undefined;
  return v || "/etc/hosts";
}

/**
 * Writes `text` to `path`, keeping its mode and owner: atomically (a file beside it, renamed over
 * it) where that works; in place where the file is a mount point of its own (docker bind-mounts
 * /etc/hosts into containers, the netns compute type gives each instance its own), which rename
 * cannot replace (EBUSY).
 * @throws the fs error when neither works.
 */
function writeKeeping(path: string, text: string): void {
  const st = statSync(path);
  const tmp = join(dirname(path), `.${Date.now()}.${process.pid}.raptiformica-hosts`);
  try {
    writeFileSync(tmp, text, { mode: st.mode & 0o7777 });
    chownSync(tmp, st.uid, st.gid);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EBUSY" && code !== "EXDEV" && code !== "EACCES" && code !== "EPERM" && code !== "EROFS") throw e;
    writeFileSync(path, text);
  }
}

/**
 * Keeps the member block of one hosts file in step with the neighbours (see HOSTS_BEGIN). Writes
 * only when the block changes; a name left out, or a file that cannot be written, is logged
 * once per change and never stops the agent.
 */
export class HostsFile {
  private warned = "";

  constructor(
    private readonly path: string | undefined,
    private readonly log: Logger,
  ) {}

  /** Brings the block in line with `neighbours`. Never throws. */
  sync(neighbours: readonly Neighbour[]): void {
    if (this.path === undefined) return;
    const { entries, skipped } = memberHostEntries(neighbours);
    let problem = skipped.length > 0 ? `member names left out of ${this.path}: ${skipped.join("; ")}` : "";
    try {
      let text = "";
      try {
        text = readFileSync(this.path, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        writeFileSync(this.path, "", { mode: 0o644 });
      }
      const next = withMemberBlock(text, entries);
      if (next !== text) writeKeeping(this.path, next);
    } catch (e) {
      problem = `${problem ? `${problem}; ` : ""}cannot keep member names in ${this.path}: ${errorMessage(e)}`;
    }
    if (problem && problem !== this.warned) this.log.warn(problem);
    this.warned = problem;
  }

  /** Removes the block (`clean`). Never throws; says what it could not do. */
  remove(): void {
    if (this.path === undefined) return;
    try {
      const text = readFileSync(this.path, "utf8");
      const next = withMemberBlock(text, []);
      if (next !== text) writeKeeping(this.path, next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn(`cannot remove the member names from ${this.path}: ${errorMessage(e)}`);
    }
  }
}
