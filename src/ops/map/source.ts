import type { Etcd3 } from "etcd3";
import { KEY_ROOT } from "../../config/flatten.ts";
import { deadline, readOnceMoreIfDropped, type TlsFiles } from "../../consensus/client.ts";
import { LINKS_PREFIX, parseLinkReport, type LinkReport } from "../../consensus/links.ts";
import { KEYS } from "../../consensus/settings.ts";
import type { ClusterProblem } from "../cluster/wire.ts";
import { clusterMembers } from "../members.ts";
import type { GraphSource } from "./feed.ts";
import { buildGraph, type MapGraph } from "./graph.ts";

/**
 * Every link report in the KV that can be read, and a problem for each that cannot (one bad
 * report never hides the others).
 * @throws ClusterUnavailable (DeadlineExceeded) when the KV does not answer within `ms`.
 */
export async function readLinkReports(client: Etcd3, ms = 3000): Promise<{ reports: LinkReport[]; problems: ClusterProblem[] }> {
  const all = await deadline("etcd read of the link reports", ms, client.getAll().prefix(LINKS_PREFIX).strings());
  const reports: LinkReport[] = [];
  const problems: ClusterProblem[] = [];
  for (const [key, value] of Object.entries(all).sort(([a], [b]) => a.localeCompare(b))) {
    const r = parseLinkReport(key, value);
    if (r.ok) reports.push(r.report);
    else problems.push({ kind: "key", subject: key, message: r.problem });
  }
  return { reports, problems };
}

/** Keys whose change can change the map: node records, link reports, neighbour entries, the voter log. */
export function changesGraph(key: string): boolean {
  return key.startsWith(KEYS.nodes) || key.startsWith(LINKS_PREFIX) || key.startsWith(KEYS.neighbours) || key === KEYS.voterLog;
}

/**
 * The map's graph from the cluster KV: the member rows exactly as `members` makes them
 * (clusterMembers), the link reports, and a watch on raptiformica/ for the keys that change
 * them. The connection is opened by `connect` when first needed and again after `reset`.
 */
export class KvGraphSource implements GraphSource {
  private client: Etcd3 | undefined;
  private connecting: Promise<Etcd3> | undefined;

  constructor(
    private readonly d: {
      /** Opens a client to the cluster KV; rejects when none answers. */
      readonly connect: () => Promise<Etcd3>;
      /** This member's certificates (for the member list through a proxy). */
      readonly tls: TlsFiles;
      /** This member's public key, when known. */
      readonly self: () => string | undefined;
      readonly now?: () => number;
    },
  ) {}

  async read(): Promise<MapGraph> {
    const client = await this.kv();
    const [members, links] = await Promise.all([readOnceMoreIfDropped(() => clusterMembers(client, this.d.tls)), readOnceMoreIfDropped(() => readLinkReports(client))]);
    const self = this.d.self();
    return buildGraph({
      rows: members.rows,
      records: members.records,
      reports: links.reports,
      problems: [...members.problems, ...links.problems],
      ...(self ? { self } : {}),
      now: (this.d.now ?? Date.now)(),
    });
  }

  async watch(changed: () => void, failed: (e: unknown) => void): Promise<() => void> {
    const client = await this.kv();
    const watcher = await deadline("etcd watch", 3000, client.watch().prefix(`${KEY_ROOT}/`).create());
    const on = (res: { key: Buffer }) => {
      if (changesGraph(res.key.toString())) changed();
    };
    watcher.on("put", on);
    watcher.on("delete", on);
    // Only when etcd cancels the watch (e.g. its revision was compacted away): it is dead then.
    watcher.on("error", failed);
    return () => void watcher.cancel().catch(() => undefined);
  }

  reset(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async kv(): Promise<Etcd3> {
    if (this.client) return this.client;
    this.connecting ??= this.d.connect().finally(() => (this.connecting = undefined));
    const client = await this.connecting;
    // Two callers awaited the same connection: both use it.
    this.client ??= client;
    return this.client;
  }
}
