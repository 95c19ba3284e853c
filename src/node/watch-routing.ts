import { clientUrl } from "../consensus/etcd-args.ts";
import { isEphemeralKey } from "../consensus/kv-config.ts";
import type { Role } from "../consensus/registry.ts";
import { KEYS } from "../consensus/settings.ts";
import { addressForKey, isPublicKeyHex } from "../mesh/yggdrasil/address.ts";
import { hostOfUrl, type ClusterChange, type NodeState } from "./agent-state.ts";
import type { ConfigView } from "./config-view.ts";

/** What one watched change means to this agent (applied by the loop, see Agent.onChange). */
export interface ChangeRoute {
  /** A shared-config key: patch the KV copy and mirror it into the local cache. */
  readonly config: boolean;
  /** The voter set changed: a reused member list is stale. */
  readonly voterLog: boolean;
  /** A node record came (gone: false) or went (gone: true): its mesh address. */
  readonly record?: { readonly address: string; readonly gone: boolean };
  /** Hand it to the cluster_change hook. */
  readonly hook: boolean;
  /** Reconcile now rather than at the next tick. */
  readonly poke: boolean;
}

/**
 * Where a watched change goes. Node records wake only the leader (its voter manager needs
 * them; the others gain nothing from a tick) and a proxy whose upstream's record it is (to
 * leave out a voter that is most likely dead); neighbour entries wake everyone (new peers to
 * dial, keys to allow); the voter log wakes everyone (the voter set changed).
 */
export function routeChange(type: "put" | "delete", key: string, s: { readonly role?: Role; readonly proxyEndpoints: readonly string[] }): ChangeRoute {
  const isRecord = key.startsWith(KEYS.nodes);
  const isNeighbour = key.startsWith(KEYS.neighbours);
  const voterLog = key === KEYS.voterLog;
  let record: ChangeRoute["record"];
  let proxied = false;
  if (isRecord) {
    const pk = key.slice(KEYS.nodes.length);
    const address = isPublicKeyHex(pk) ? hostOfUrl(clientUrl(addressForKey(pk), 1)) : "";
    proxied = s.role === "proxy" && s.proxyEndpoints.some((e) => hostOfUrl(e) === address);
    record = { address, gone: type === "delete" };
  }
  const hook = isRecord || isNeighbour;
  const poke = voterLog || proxied || (hook && (isNeighbour || s.role === "leader"));
  return { config: !isEphemeralKey(key), voterLog, ...(record ? { record } : {}), hook, poke };
}

/** Applies a watched change as routeChange says: to the config copy, the state, the hook queue. */
export function applyChange(
  type: "put" | "delete",
  key: string,
  value: string | undefined,
  d: { readonly state: NodeState; readonly config: Pick<ConfigView, "patch" | "scheduleMirror">; readonly hooks: { push(c: ClusterChange): void }; readonly poke: () => void },
  revision?: bigint,
): void {
  const route = routeChange(type, key, d.state);
  if (route.config) d.config.patch(type, key, value, revision);
  if (route.voterLog) d.state.voterLogChanges++;
  if (route.record?.gone) d.state.recordGone.add(route.record.address);
  else if (route.record) d.state.recordGone.delete(route.record.address);
  if (route.hook) d.hooks.push({ type, key });
  if (route.config) d.config.scheduleMirror();
  if (route.poke) d.poke();
}
