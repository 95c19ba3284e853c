import { z } from "zod";
import { KEY_ROOT } from "../config/flatten.ts";

/*
 * A member's report of its mesh links, kept in the KV under the member's own lease (the lease of
 * its node record), so it vanishes with the member. One key per member:
 *
 *   raptiformica/links/<public key of the reporting member>  →  LinkReport as JSON
 *
 * Written by the agent (node/step-links.ts); read by `raptiformica links`, the map server and
 * anything else that draws the mesh. Like node records, never mirrored into a local cache.
 * A report is data from a member: every reader parses it with parseLinkReport, which refuses
 * anything malformed (one bad report never stops the others from being shown).
 */

/** The KV prefix of link reports. */
export const LINKS_PREFIX = `${KEY_ROOT}/links/`;

/** Bounds: a report is small whatever a member writes (a member has a few dozen peerings). */
export const MAX_PEERINGS_PER_REPORT = 512;
const MAX_TEXT = 512;

const hexKey = z.string().regex(/^[0-9a-f]{64}$/, "a 64-digit lowercase hex public key");
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const seconds = z.number().nonnegative().max(1e10);

/** One peering as the reporting member's Yggdrasil sees it. */
export const PeeringSchema = z
  .object({
    /** The other end's public key; absent while a configured peer is down and unknown. */
    key: hexKey.optional(),
    /** The URI dialled, or for an inbound peering the address and port it came from (no ?key=). */
    remote: z.string().max(MAX_TEXT),
    /** True: the other end dialled this member; false: this member dialled; null: the version does not say (0.4). */
    inbound: z.boolean().nullable(),
    up: z.boolean(),
    /** Yggdrasil's switch port of this peering on the reporting member (what getPaths lists), when given. */
    port: count.optional(),
    /** Round-trip latency Yggdrasil measured, ms; absent where the version gives none. */
    latencyMs: z.number().nonnegative().max(1e7).optional(),
    /** Bytes received from / sent to the other end over this peering since it came up. */
    rxBytes: count.optional(),
    txBytes: count.optional(),
    /** How long this peering has been up, seconds. */
    uptimeSeconds: seconds.optional(),
    /** Why the last attempt failed (0.5, configured peers). */
    lastError: z.string().max(MAX_TEXT).optional(),
    /** How long before `reportedAt` that attempt failed, seconds (0.5 keeps the error on a peering that came up since). */
    lastErrorAgeSeconds: seconds.optional(),
    /** Bytes per second received / sent now (0.5, on the peering of a pair that carries the traffic). */
    rxBytesPerSecond: z.number().nonnegative().max(1e13).optional(),
    txBytesPerSecond: z.number().nonnegative().max(1e13).optional(),
  })
  .strict();

export const LinkReportSchema = z
  .object({
    /** Format version of the report; readers refuse others. */
    v: z.literal(1),
    /** The reporting member's public key (the same as in its key). */
    publicKey: hexKey,
    /** When the member read these peerings from Yggdrasil, ms since the epoch (its clock). */
    reportedAt: count,
    /** "0.4" | "0.5": what the numbers below can hold. */
    yggdrasilMajor: z.string().max(16),
    peerings: z.array(PeeringSchema).max(MAX_PEERINGS_PER_REPORT),
    /**
     * 0.5: the reporting member's parent in Yggdrasil's spanning tree (its own key when it is the
     * root). With every member's, the tree; what routes are drawn from (Yggdrasil 0.5 forwards
     * to the peer closest to the destination in that tree).
     */
    treeParent: hexKey.optional(),
  })
  .strict();

export type Peering = z.infer<typeof PeeringSchema>;
export type LinkReport = z.infer<typeof LinkReportSchema>;

/** The KV key of `publicKey`'s link report. */
export function linkReportKey(publicKey: string): string {
  return `${LINKS_PREFIX}${publicKey}`;
}

/**
 * Parses the value stored at `key` (under LINKS_PREFIX) as a LinkReport.
 * Returns `{ ok: true, report }`, or `{ ok: false, problem }` with one sentence naming the key
 * and what is wrong: not JSON, not the format, or a publicKey that differs from the key's (a
 * member can only speak for itself). Pure; throws nothing.
 */
export function parseLinkReport(key: string, value: string): { ok: true; report: LinkReport } | { ok: false; problem: string } {
  const keyPart = key.startsWith(LINKS_PREFIX) ? key.slice(LINKS_PREFIX.length) : "";
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return { ok: false, problem: `The link report at ${key} is not JSON; it is ignored until its member writes it again.` };
  }
  const parsed = LinkReportSchema.safeParse(doc);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? ` at ${first.path.join(".")}` : "";
    return { ok: false, problem: `The link report at ${key} is not a version-1 link report (${first?.message ?? "invalid"}${where}); it is ignored.` };
  }
  if (parsed.data.publicKey !== keyPart) {
    return { ok: false, problem: `The link report at ${key} names another member (${parsed.data.publicKey}); it is ignored.` };
  }
  return { ok: true, report: parsed.data };
}
