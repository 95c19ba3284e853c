// Pure helpers of the map page: how numbers are shown, how wide a link is drawn, what a search
// matches, what the address bar selects. No DOM here, so they run (and are tested) under Node too.
import type { MapLink, MapNode } from "../../ops/map/graph.ts";

/** Seconds as `members` shows them (`45s`, `3m2s`, `2h5m`, `1d3h`); `-` when unknown. */
export function formatUptime(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "-";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** Bytes in binary units, three significant digits: `512 B`, `1.50 KiB`, `12.3 MiB`; `-` when unknown. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Math.max(0, bytes);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toPrecision(3)} ${units[u]}`;
}

/** A round trip in ms: `0.42 ms`, `12.5 ms`, `230 ms`; `-` when unknown. */
export function formatLatency(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** Narrowest and widest a link is drawn, px. */
export const LINK_WIDTH = { min: 1.5, max: 9 } as const;

/**
 * How wide a link is drawn for its traffic: logarithmic between LINK_WIDTH.min (no traffic
 * known) and .max (the busiest link of the map), so a link with a thousandth of the busiest
 * one's bytes is still visibly wider than an idle one.
 */
export function linkWidth(bytes: number | undefined, busiest: number): number {
  if (!bytes || bytes <= 0 || busiest <= 0) return LINK_WIDTH.min;
  const share = Math.log1p(bytes) / Math.log1p(Math.max(busiest, bytes));
  return Math.round((LINK_WIDTH.min + (LINK_WIDTH.max - LINK_WIDTH.min) * share) * 10) / 10;
}

/** Whether `node` matches a search: its name, mesh address or host contains `query` (case-insensitive, spaces ignored at the ends). An empty query matches all. */
export function matches(node: Pick<MapNode, "name" | "meshAddress" | "host">, query: string): boolean {
  const q = query.trim().toLowerCase();
  if (q === "") return true;
  return node.name.toLowerCase().includes(q) || node.meshAddress.toLowerCase().includes(q) || (node.host ?? "").toLowerCase().includes(q);
}

/** The selected node of a location hash (`#node=<key or name>`), or undefined. */
export function selectedInHash(hash: string): string | undefined {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const v = params.get("node");
  return v ? v : undefined;
}

/** The hash that selects `id` (its public key), or none. */
export function hashFor(id: string | undefined): string {
  return id ? `#node=${encodeURIComponent(id)}` : "";
}

/** The node a hash names: by public key first, else by name (what a person types). */
export function findNode<N extends Pick<MapNode, "id" | "name">>(nodes: readonly N[], wanted: string | undefined): N | undefined {
  if (!wanted) return undefined;
  return nodes.find((n) => n.id === wanted) ?? nodes.find((n) => n.name === wanted);
}

/** The links of `id`, with the other end's key: what a node's details list. */
export function linksOf(links: readonly MapLink[], id: string): { link: MapLink; other: string }[] {
  return links.filter((l) => l.source === id || l.target === id).map((link) => ({ link, other: link.source === id ? link.target : link.source }));
}
