import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { parseLinkReport, type LinkReport, type Peering } from "../../src/consensus/links.ts";
import type { NodeRecord } from "../../src/consensus/registry.ts";
import type { MemberRow } from "../../src/ops/cluster/wire.ts";
import { buildGraph, graphKey, uriHost } from "../../src/ops/map/graph.ts";
import { changesGraph } from "../../src/ops/map/source.ts";
import { formatUptime as membersUptime } from "../../src/ops/members.ts";
import { findNode, formatBytes, formatLatency, formatUptime, hashFor, linkWidth, LINK_WIDTH, matches, selectedInHash } from "../../src/web/map/format.ts";
import { fakeKey } from "../helpers/map-fixture.ts";

const [A, B, C, D] = ["a", "b", "c", "d"].map(fakeKey).sort() as [string, string, string, string];

function row(key: string, name: string, extra: Partial<MemberRow> = {}): MemberRow {
  return { name, publicKey: key, meshAddress: `200::${name}`, host: `198.18.0.${name.charCodeAt(0) - 96}`, status: "alive", role: "proxy", uptimeSeconds: 60, ...extra };
}

function report(key: string, peerings: Peering[], reportedAt = 1000): LinkReport {
  return { v: 1, publicKey: key, reportedAt, yggdrasilMajor: "0.5", peerings };
}

const up = (key: string | undefined, extra: Partial<Peering> = {}): Peering => ({ ...(key ? { key } : {}), remote: "tcp://198.18.0.9:4863", inbound: false, up: true, ...extra });

const rows = [row(A, "a", { role: "leader" }), row(B, "b", { role: "voter" }), row(C, "c", { status: "failed", uptimeSeconds: undefined }), row(D, "d", { status: "left", uptimeSeconds: undefined })];

describe("the map's graph", () => {
  it("has the member rows as nodes, in their order, with their statuses and roles, versions from the records, and this member marked", () => {
    const records: NodeRecord[] = [{ publicKey: A, name: "a", meshAddress: "200::a", role: "leader", startedAt: 0, hostname: "host-a", version: "0.1.0", yggdrasilMajor: "0.5" }];
    const g = buildGraph({ rows, records, reports: [], self: B, now: 5 });
    assert.deepEqual(
      g.nodes.map((n) => [n.name, n.status, n.role, n.self]),
      [["a", "alive", "leader", false], ["b", "alive", "voter", true], ["c", "failed", "proxy", false], ["d", "left", "proxy", false]],
    );
    assert.deepEqual([g.nodes[0]?.version, g.nodes[0]?.hostname, g.nodes[0]?.yggdrasilMajor], ["0.1.0", "host-a", "0.5"]);
    assert.equal(g.nodes[1]?.version, undefined);
    assert.deepEqual([g.self, g.generatedAt, g.reporting, g.links.length], [B, 5, 0, 0]);
  });

  it("merges both ends' reports into one link per pair: up if either end says so, mean latency, the larger byte count, the shorter uptime", () => {
    const g = buildGraph({
      rows,
      reports: [
        report(B, [up(A, { latencyMs: 2, rxBytes: 100, txBytes: 50, uptimeSeconds: 30, inbound: true })]),
        report(A, [up(B, { latencyMs: 4, rxBytes: 40, txBytes: 90, uptimeSeconds: 31 })]),
      ],
      now: 0,
    });
    assert.equal(g.links.length, 1);
    const l = g.links[0]!;
    assert.deepEqual([l.id, l.source, l.target, l.up, l.latencyMs, l.bytes, l.uptimeSeconds], [`${A}~${B}`, A, B, true, 3, 150, 30]);
    assert.deepEqual(Object.keys(l.ends), [A, B]);
    assert.deepEqual([l.ends[A]?.inbound, l.ends[B]?.inbound], [false, true]);
    assert.equal(g.reporting, 2);
    assert.deepEqual(g.nodes.filter((n) => n.linksReportedAt !== undefined).map((n) => n.name), ["a", "b"]);
  });

  it("a link only one end reports is there; a link both ends report down is down; two peerings of one pair are one link", () => {
    const g = buildGraph({
      rows,
      reports: [
        report(A, [up(B), up(B, { inbound: true, rxBytes: 7 }), up(C, { up: false, lastError: "connection refused" })]),
        report(C, [up(A, { up: false })]),
      ],
      now: 0,
    });
    assert.deepEqual(
      g.links.map((l) => [l.source === A ? "a" : "?", l.target === B ? "b" : l.target === C ? "c" : "?", l.up]),
      [["a", "b", true], ["a", "c", false]],
    );
    const ac = g.links.find((l) => l.target === C)!;
    assert.equal(ac.ends[A]?.lastError, "connection refused");
    assert.equal(g.links.find((l) => l.target === B)?.bytes, 7);
  });

  it("puts a down peering without a key to the member whose host the URI names; otherwise lists it with the member", () => {
    const g = buildGraph({
      rows,
      reports: [report(A, [up(undefined, { remote: "tcp://198.18.0.2:4863", up: false }), up(undefined, { remote: "tls://[2001:db8::7]:443", up: false, lastError: "timeout" }), up(fakeKey("stranger"))])],
      now: 0,
    });
    assert.deepEqual(g.links.map((l) => [l.target === B, l.up]), [[true, false]]);
    assert.deepEqual(
      g.nodes[0]?.loosePeerings.map((p) => [p.key ?? "-", p.remote, p.up]),
      [["-", "tls://[2001:db8::7]:443", false], [fakeKey("stranger"), "tcp://198.18.0.9:4863", true]],
    );
  });

  it("ignores a report of no member and a peering with itself", () => {
    const g = buildGraph({ rows, reports: [report(fakeKey("ghost"), [up(A)]), report(A, [up(A)])], now: 0 });
    assert.deepEqual([g.links.length, g.reporting], [0, 1]);
  });

  it("parses the host of peering URIs", () => {
    assert.equal(uriHost("tcp://198.18.0.2:4863"), "198.18.0.2");
    assert.equal(uriHost("tls://[2001:DB8::1]:443?sni=x"), "2001:db8::1");
    assert.equal(uriHost("quic://Example.org:1"), "example.org");
    assert.equal(uriHost("tcp://:1"), undefined);
  });

  it("its key ignores the time it was read and uptimes ticking on, but not a status", () => {
    const a = buildGraph({ rows, reports: [], now: 1 });
    const later = buildGraph({ rows: rows.map((r) => ({ ...r, uptimeSeconds: r.uptimeSeconds === undefined ? undefined : r.uptimeSeconds + 9 })), reports: [], now: 99 });
    assert.equal(graphKey(a), graphKey(later));
    const failed = buildGraph({ rows: rows.map((r) => (r.publicKey === B ? { ...r, status: "failed" as const } : r)), reports: [], now: 1 });
    assert.notEqual(graphKey(a), graphKey(failed));
  });

  it("is redrawn for node records, link reports, neighbour entries and the voter log, not for other config", () => {
    assert.ok(changesGraph(`raptiformica/nodes/${A}`));
    assert.ok(changesGraph(`raptiformica/links/${A}`));
    assert.ok(changesGraph(`raptiformica/meshnet/neighbours/${A}/host`));
    assert.ok(changesGraph("raptiformica/voters/log"));
    assert.ok(!changesGraph("raptiformica/app/colour"));
  });

  it("refuses nothing that parseLinkReport accepts (a report as members write it)", () => {
    const text = JSON.stringify(report(A, [up(B, { latencyMs: 1.5, rxBytes: 1, txBytes: 2, uptimeSeconds: 3, port: 1 })]));
    const r = parseLinkReport(`raptiformica/links/${A}`, text);
    assert.ok(r.ok);
    if (r.ok) assert.equal(buildGraph({ rows, reports: [r.report], now: 0 }).links.length, 1);
  });
});

describe("the map page's formatting", () => {
  it("shows uptimes exactly as `members` does", () => {
    for (const s of [undefined, 0, 59, 60, 3599, 3600, 86399, 86400, 1e6]) assert.equal(formatUptime(s), membersUptime(s), String(s));
  });

  it("shows bytes and latencies readably", () => {
    assert.deepEqual([formatBytes(undefined), formatBytes(512), formatBytes(1536), formatBytes(12.3 * 2 ** 20)], ["-", "512 B", "1.50 KiB", "12.3 MiB"]);
    assert.deepEqual([formatLatency(0.4213), formatLatency(12.345), formatLatency(230.4), formatLatency(undefined)], ["0.42 ms", "12.3 ms", "230 ms", "-"]);
  });

  it("draws links wider with more traffic, logarithmically, between the bounds", () => {
    assert.equal(linkWidth(undefined, 1e9), LINK_WIDTH.min);
    assert.equal(linkWidth(1e9, 1e9), LINK_WIDTH.max);
    const [k, m] = [linkWidth(1e3, 1e9), linkWidth(1e6, 1e9)];
    assert.ok(LINK_WIDTH.min < k && k < m && m < LINK_WIDTH.max, `${k} ${m}`);
  });

  it("searches by name, mesh address or host; selects by key or name from the URL", () => {
    const n = { name: "web-1", meshAddress: "200:abcd::1", host: "Example.org" };
    assert.ok(matches(n, " WEB"));
    assert.ok(matches(n, "abcd"));
    assert.ok(matches(n, "example"));
    assert.ok(matches(n, ""));
    assert.ok(!matches(n, "db"));
    assert.equal(selectedInHash(hashFor(A)), A);
    assert.equal(selectedInHash("#node=web%2D1"), "web-1");
    assert.equal(selectedInHash(""), undefined);
    const nodes = [{ id: A, name: "a" }, { id: B, name: A }];
    assert.equal(findNode(nodes, A)?.id, A, "a key wins over a name");
    assert.equal(findNode(nodes, "a")?.id, A);
  });
});
