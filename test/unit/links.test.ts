import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { formatBytes, formatLatency, leftView, linkedOtherWay } from "../../src/cli/links.ts";
import type { LinkReport, Peering } from "../../src/consensus/links.ts";
import { linksAnswer, type LinkMember } from "../../src/ops/cluster/wire.ts";
import { linkMembers, mergeLinks, pickLinkMember, routeBetween } from "../../src/ops/links.ts";
import { memberStatuses } from "../../src/ops/members.ts";
import { neighbourMapping } from "../../src/mesh/neighbours.ts";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { UserError } from "../../src/util/errors.ts";

const K = (c: string) => c.repeat(64);
const [A, B, C, D, E] = ["a", "b", "c", "d", "e"].map(K) as [string, string, string, string, string];
const members = [
  { name: "alpha", publicKey: A },
  { name: "bravo", publicKey: B },
  { name: "charlie", publicKey: C },
  { name: "delta", publicKey: D },
];

function report(by: string, peerings: Peering[], o: Partial<LinkReport> = {}): LinkReport {
  return { v: 1, publicKey: by, reportedAt: 1000, yggdrasilMajor: "0.5", peerings, ...o };
}
const out = (key: string, extra: Partial<Peering> = {}): Peering => ({ key, remote: "tcp://198.18.0.9:4863", inbound: false, up: true, ...extra });
const inn = (key: string, extra: Partial<Peering> = {}): Peering => ({ key, remote: "tcp://198.18.0.9:50000", inbound: true, up: true, ...extra });
const ends = (rows: ReturnType<typeof mergeLinks>) => rows.map((r) => `${r.from.name}${r.dialled ? ">" : "-"}${r.to.name}:${r.status}:${r.views.map((v) => members.find((m) => m.publicKey === v.by)?.name ?? v.by.slice(0, 4)).join("+")}`);

describe("links: the two ends' reports merged", () => {
  it("0.5: a dialler's outbound and the listener's inbound peering are one link; two members dialling each other are two", () => {
    const rows = mergeLinks(
      [
        report(A, [out(B, { rxBytes: 10, txBytes: 20, latencyMs: 0.5 }), inn(B, { rxBytes: 1, txBytes: 2 })]),
        report(B, [inn(A, { rxBytes: 20, txBytes: 10 }), out(A, { rxBytes: 2, txBytes: 1 })]),
      ],
      members,
    );
    assert.deepEqual(ends(rows), ["alpha>bravo:up:alpha+bravo", "bravo>alpha:up:bravo+alpha"]);
    // The dialler's view first, its bytes as it counts them.
    assert.deepEqual(rows[0]?.views.map((v) => [v.rxBytes, v.txBytes]), [[10, 20], [20, 10]]);
    assert.equal(rows[0]?.views[0]?.latencyMs, 0.5);
  });

  it("a dial that keeps failing while the pair is linked the other way is told apart (0.5 keeps one of two dials)", () => {
    const rows = mergeLinks([report(A, [out(B), out(C, { up: false })]), report(B, [inn(A), out(A, { up: false, lastError: "EOF" })])], members);
    assert.deepEqual(ends(rows), ["alpha>bravo:up:alpha+bravo", "alpha>charlie:down:alpha", "bravo>alpha:down:bravo"]);
    assert.deepEqual(rows.map((r) => linkedOtherWay(r, rows)), [false, false, true]);
  });

  it("a link only one end reports, a down configured peer and one known only by its address", () => {
    const rows = mergeLinks(
      [
        report(A, [out(C, { up: false, lastError: "dial tcp: connection refused" }), { remote: "tcp://198.18.0.7:4863", inbound: false, up: false }]),
        report(B, [inn(D, { rxBytes: 5, txBytes: 6 })]),
      ],
      members,
    );
    assert.deepEqual(ends(rows), ["alpha>charlie:down:alpha", "alpha>tcp://198.18.0.7:4863:down:alpha", "delta>bravo:up:bravo"]);
    assert.deepEqual(rows[1]?.to, { name: "tcp://198.18.0.7:4863", remote: "tcp://198.18.0.7:4863" });
  });

  it("ends that disagree make a disputed link; an end that is no member is named by its key's start", () => {
    const rows = mergeLinks([report(A, [out(B)]), report(B, [inn(A, { up: false })]), report(E, [out(A)]), report(A, [])], members);
    assert.deepEqual(ends(rows).slice(0, 1), ["alpha>bravo:disputed:alpha+bravo"]);
    assert.equal(rows.find((r) => r.from.publicKey === E)?.from.name, "eeeeeeeeeeeeeeee");
  });

  it("0.4: the pair is the link (direction unknown), left end first by name; several peerings of one link are matched longest up first", () => {
    const p04 = (key: string, uptimeSeconds: number): Peering => ({ key, remote: "tcp://x:1", inbound: null, up: true, uptimeSeconds });
    const rows = mergeLinks([report(C, [p04(A, 100)], { yggdrasilMajor: "0.4" }), report(A, [p04(C, 101)], { yggdrasilMajor: "0.4" })], members);
    assert.deepEqual(ends(rows), ["alpha-charlie:up:alpha+charlie"]);
    const twice = mergeLinks([report(A, [out(B, { uptimeSeconds: 3 }), out(B, { uptimeSeconds: 90 })]), report(B, [inn(A, { uptimeSeconds: 89 }), inn(A, { uptimeSeconds: 2 })])], members);
    assert.deepEqual(twice.map((r) => r.views.map((v) => v.uptimeSeconds)), [[90, 89], [3, 2]]);
  });

  it("the answer decodes with the wire schema; members carry their report's tree parent", () => {
    const reports = [report(A, [out(B)], { treeParent: B }), report(B, [inn(A)], { treeParent: B })];
    const m = linkMembers([...members.map((x) => ({ ...x, status: "alive" as const })), { name: "echo", publicKey: E, status: "failed" }], reports);
    assert.deepEqual(m[0], { name: "alpha", publicKey: A, status: "alive", reportedAt: 1000, yggdrasilMajor: "0.5", treeParent: B });
    assert.deepEqual(m[4], { name: "echo", publicKey: E, status: "failed" });
    const answer = { quorum: true, members: m, links: mergeLinks(reports, m), problems: [] };
    assert.deepEqual(linksAnswer.parse(JSON.parse(JSON.stringify(answer))), answer);
  });

  it("the members are named and given a status by the same rule as `members`", () => {
    const mapping = {
      ...neighbourMapping({ publicKey: A, meshAddress: addressForKey(A), sshPort: 22, yggdrasilPort: 4863, name: "alpha" }),
      ...neighbourMapping({ publicKey: B, meshAddress: addressForKey(B), sshPort: 22, yggdrasilPort: 4863, name: "old name" }),
      ...neighbourMapping({ publicKey: C, meshAddress: addressForKey(C), sshPort: 22, yggdrasilPort: 4863, left: true }),
    };
    const rec = (publicKey: string, name: string) => ({ publicKey, name, meshAddress: "200::1", role: "voter" as const, startedAt: 1, hostname: "h", version: "0", yggdrasilMajor: "0.5" });
    const rows = memberStatuses(mapping, [rec(B, "bravo"), rec(D, "delta")]);
    assert.deepEqual(
      rows.map((r) => [r.name, r.status]),
      [
        ["alpha", "failed"],
        ["bravo", "alive"],
        ["cccccccccccccccc", "left"],
        ["delta", "alive"],
      ],
    );
  });
});

describe("links: the route between two members (Yggdrasil 0.5's next hop over the tree)", () => {
  // Tree: alpha is the root; bravo and charlie its children; delta charlie's child.
  // Links: alpha-bravo, alpha-charlie, charlie-delta (the tree), and a shortcut bravo-delta.
  const tree: Record<string, string> = { [A]: A, [B]: A, [C]: A, [D]: C };
  const m = (extra: Partial<LinkMember> = {}) => members.map((x) => ({ ...x, status: "alive" as const, reportedAt: 1, yggdrasilMajor: "0.5", treeParent: tree[x.publicKey], ...extra }));
  const link = (from: string, to: string, status: "up" | "down" = "up") => ({ from: { publicKey: from, name: "" }, to: { publicKey: to, name: "" }, dialled: true, status, views: [] });
  const links = [link(A, B), link(C, A), link(C, D), link(B, D)];
  const names = (r: ReturnType<typeof routeBetween>) => (r.ok ? r.hops.map((h) => h.name + (h.alternatives.length ? `(${h.alternatives.join("|")})` : "")) : r.why);

  it("follows the tree where there is no shortcut, and takes a peering closer to the destination", () => {
    assert.deepEqual(names(routeBetween({ members: m(), links }, A, C)), ["alpha", "charlie"]);
    // alpha (the root) and delta (charlie's child) are both 1 from charlie: a tie, named.
    assert.deepEqual(names(routeBetween({ members: m(), links }, B, C)), ["bravo", "alpha(delta)", "charlie"]);
    // bravo peers with delta directly: one hop, not up to the root and down.
    assert.deepEqual(names(routeBetween({ members: m(), links }, B, D)), ["bravo", "delta"]);
    // Distances are counted in the tree, not over links: bravo (3 tree hops from delta, though it
    // peers with it) is no closer than alpha itself, charlie (1) is.
    assert.deepEqual(names(routeBetween({ members: m(), links }, A, D)), ["alpha", "charlie", "delta"]);
    assert.deepEqual(names(routeBetween({ members: m(), links: links.filter((l) => l !== links[3]) }, B, D)), ["bravo", "alpha", "charlie", "delta"]);
  });

  it("a down link is not taken", () => {
    assert.deepEqual(names(routeBetween({ members: m(), links: [link(A, B), link(C, A), link(C, D), link(B, D, "down")] }, B, D)), ["bravo", "alpha", "charlie", "delta"]);
  });

  it("says why not: Yggdrasil 0.4, a member without a report, a tree the links do not fit", () => {
    const r04 = routeBetween({ members: m({ yggdrasilMajor: "0.4" }), links }, B, C);
    assert.equal(r04.ok, false);
    assert.match(names(r04) as string, /0\.4.*does not tell its spanning tree/);
    const silent = m().map((x) => (x.publicKey === C ? { name: x.name, publicKey: x.publicKey, status: x.status } : x));
    assert.match(names(routeBetween({ members: silent, links }, B, C)) as string, /charlie has no link report/);
    assert.match(names(routeBetween({ members: silent, links }, B, D)) as string, /tree above delta is not known: charlie/);
    assert.match(names(routeBetween({ members: m(), links: [link(C, D)] }, B, D)) as string, /No peer of bravo is closer to delta/);
  });
});

describe("links: naming members and numbers", () => {
  const answer = { members: members.map((x) => ({ ...x, status: "alive" as const })) };
  it("picks a member by name, prefix or mesh address like `ssh NODE`, and refuses an unknown or ambiguous one", () => {
    assert.equal(pickLinkMember(answer, "bravo").publicKey, B);
    assert.equal(pickLinkMember(answer, "ch").publicKey, C);
    assert.throws(() => pickLinkMember(answer, "zulu"), (e: unknown) => e instanceof UserError && /No member is named "zulu".*alpha/s.test(e.message) && /the cluster's/.test(e.message));
    assert.throws(() => pickLinkMember({ members: [...answer.members, { name: "alps", publicKey: E, status: "alive" }] }, "al"), /names 2 members/);
  });

  it("shows bytes in SI units, latency in ms, and the left end's numbers (the other end's turned around)", () => {
    assert.deepEqual([0, 950, 1234, 56_789_000, 5.1e9, undefined].map(formatBytes), ["0 B", "950 B", "1.2 kB", "57 MB", "5.1 GB", "-"]);
    assert.deepEqual([0.47, 12.4, undefined].map(formatLatency), ["0.47 ms", "12 ms", "-"]);
    const row = { from: { publicKey: A, name: "alpha" }, to: { publicKey: B, name: "bravo" }, dialled: true, status: "up" as const, views: [{ by: B, up: true, reportedAt: 1, rxBytes: 5, txBytes: 7 }] };
    assert.deepEqual([leftView(row)?.rx, leftView(row)?.tx], [7, 5]);
    const both = { ...row, views: [{ by: A, up: true, reportedAt: 1, rxBytes: 1, txBytes: 2 }, ...row.views] };
    assert.deepEqual([leftView(both)?.rx, leftView(both)?.tx], [1, 2]);
  });
});
