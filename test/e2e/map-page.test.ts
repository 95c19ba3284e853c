/**
 * The mesh map's page in headless chromium, fed by the map's real HTTP handler with a synthetic
 * graph (test/helpers/map-fixture.ts): what it draws, live updates without a reload, the
 * selection in the URL, search, the table view, the link hover. No cluster needed: the lab
 * test (map.test.ts) covers the page on real members. Screenshots: test-artifacts/map/.
 */
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { MapGraph } from "../../src/ops/map/graph.ts";
import type { Drawn } from "../../src/web/map/graph-view.ts";
import { artifactsDir, browserMissing, launchChromium } from "../helpers/browser.ts";
import { serveGraph, syntheticGraph } from "../helpers/map-fixture.ts";

const skip = browserMissing();

interface MapHandle {
  drawn(): Drawn;
  selected(): string | undefined;
  whereIs(id: string): { x: number; y: number } | undefined;
}

const drawn = (page: Page) => page.evaluate(() => (window as unknown as { raptiformicaMap: MapHandle }).raptiformicaMap.drawn());

describe("the mesh map page", { skip, timeout: 120_000 }, () => {
  let browser: Browser;
  let served: Awaited<ReturnType<typeof serveGraph>>;
  const graph = syntheticGraph(100);
  const external: string[] = [];
  let page: Page;

  before(async () => {
    served = await serveGraph(graph);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("request", (r) => {
      if (!r.url().startsWith(served.url) && !r.url().startsWith("data:")) external.push(r.url());
    });
    await page.goto(served.url);
    await page.waitForFunction(() => document.documentElement.dataset["layout"] === "stopped", null, { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await served?.close();
  });

  it("draws every member and the links that are up, marks this member, loads nothing from elsewhere", async () => {
    const d = await drawn(page);
    assert.deepEqual(d.nodes.map((n) => n.id).sort(), graph.nodes.map((n) => n.id).sort());
    const up = graph.links.filter((l) => l.up);
    assert.ok(up.length < graph.links.length, "the fixture has links that are down");
    assert.deepEqual(d.edges.map((e) => e.id).sort(), up.map((l) => l.id).sort());
    assert.deepEqual(
      d.nodes.filter((n) => n.self).map((n) => n.id),
      [graph.self],
    );
    for (const n of graph.nodes) {
      const shown = d.nodes.find((x) => x.id === n.id);
      assert.deepEqual([shown?.status, shown?.role], [n.status, n.role], n.name);
    }
    // Wider for more traffic.
    const busiest = [...up].sort((a, b) => (b.bytes ?? 0) - (a.bytes ?? 0));
    const width = (id: string) => d.edges.find((e) => e.id === id)?.width ?? 0;
    assert.ok(width(busiest[0]!.id) > width(busiest.at(-1)!.id));
    assert.deepEqual(external, [], "no CDN, no external fonts");
    await page.screenshot({ path: join(artifactsDir(), "page-100-graph.png") });
  });

  it("has the same data as real tables, in the page for screen readers in the graph view too", async () => {
    const rows = await page.locator("#nodes-table tbody tr").count();
    assert.equal(rows, graph.nodes.length);
    assert.equal(await page.locator("#nodes-table caption").textContent(), "Members");
    assert.equal(await page.locator('#nodes-table thead th[scope="col"]').count(), 8);
    assert.equal(await page.locator("#links-table tbody tr").count(), graph.links.length);
    assert.equal(await page.locator("#graph-box").getAttribute("aria-hidden"), "true");
    const self = graph.nodes.find((n) => n.self)!;
    assert.match((await page.locator(`#nodes-table tr[data-id="${self.id}"] th`).textContent()) ?? "", /\(this member\)/);
    await page.click("#show-table");
    assert.equal(await page.locator("#show-table").getAttribute("aria-pressed"), "true");
    assert.ok(((await page.locator("#nodes-table").boundingBox())?.height ?? 0) > 500, "the table is in view");
    assert.equal(await page.locator("#graph-box").isVisible(), false);
    await page.screenshot({ path: join(artifactsDir(), "page-100-table.png") });
    await page.click("#show-graph");
  });

  it("shows a member's status change and a link going away without a reload", async () => {
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const victim = graph.nodes.find((n) => n.status === "alive" && !n.self && graph.links.some((l) => l.up && (l.source === n.id || l.target === n.id)))!;
    const cut = graph.links.find((l) => l.up && l.source !== victim.id && l.target !== victim.id)!;
    const next: MapGraph = {
      ...graph,
      nodes: graph.nodes.map((n) => (n.id === victim.id ? { ...n, status: "failed" as const } : n)),
      links: graph.links.filter((l) => l.id !== cut.id).map((l) => (l.source === victim.id || l.target === victim.id ? { ...l, up: false } : l)),
    };
    served.push(next);
    await page.waitForFunction((id) => document.querySelector(`#nodes-table tr[data-id="${id}"]`)?.getAttribute("data-status") === "failed", victim.id, { timeout: 10_000 });
    const d = await drawn(page);
    assert.equal(d.nodes.find((n) => n.id === victim.id)?.status, "failed");
    assert.ok(!d.edges.some((e) => e.id === cut.id), "the cut link is gone");
    assert.ok(!d.edges.some((e) => e.source === victim.id || e.target === victim.id), "the failed member's links are down");
    assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true);
    served.push(graph);
    await page.waitForFunction((id) => document.querySelector(`#nodes-table tr[data-id="${id}"]`)?.getAttribute("data-status") === "alive", victim.id, { timeout: 10_000 });
  });

  it("says when the member cannot read the cluster, and clears it when it can", async () => {
    served.problem("The cluster KV does not answer on this member (test).");
    await page.locator("#problem").waitFor({ state: "visible", timeout: 5000 });
    assert.match((await page.locator("#problem").textContent()) ?? "", /does not answer on this member \(test\)/);
    served.push(graph);
    await page.locator("#problem").waitFor({ state: "hidden", timeout: 5000 });
  });

  it("puts the selected member in the URL, shows its details and links; the URL selects it again", async () => {
    // The link put back by the live-update test above lays the graph out again: click only once
    // that layout has stopped, on the alive voter with the most room around it that is on screen
    // with the graph under it, looked up again before each try (at most 3).
    await page.waitForFunction(() => document.documentElement.dataset["layout"] === "stopped", null, { timeout: 30_000 });
    const voters = graph.nodes.filter((x) => x.role === "voter" && x.status === "alive").map((x) => x.id);
    let n: (typeof graph.nodes)[number] | undefined;
    let last = "";
    for (let attempt = 0; attempt < 3 && !n; attempt++) {
      const spot = await page.evaluate((ids) => {
        const m = (window as unknown as { raptiformicaMap: MapHandle }).raptiformicaMap;
        const all = m.drawn().nodes.map((d) => ({ id: d.id, at: m.whereIs(d.id)! }));
        const box = document.querySelector("#graph-box")!;
        return ids
          .map((id) => {
            const at = m.whereIs(id)!;
            const under = document.elementFromPoint(at.x, at.y);
            const clear = Math.min(...all.filter((o) => o.id !== id).map((o) => Math.hypot(o.at.x - at.x, o.at.y - at.y)));
            return { id, at, reachable: under !== null && box.contains(under), clear };
          })
          .filter((x) => x.reachable)
          .sort((a, b) => b.clear - a.clear)[0];
      }, voters);
      last = JSON.stringify(spot);
      assert.ok(spot, "an alive voter on screen");
      await page.mouse.click(spot.at.x, spot.at.y);
      const chosen = await page
        .waitForFunction((id) => location.hash === `#node=${id}`, spot.id, { timeout: 3000 })
        .then(() => true)
        .catch(() => false);
      if (chosen) n = graph.nodes.find((x) => x.id === spot.id);
    }
    assert.ok(n, `a click on a voter selects it (last try: ${last}, hash ${await page.evaluate(() => location.hash)})`);
    await page.locator("#details").waitFor({ state: "visible", timeout: 5000 });
    const details = (await page.locator("#details").textContent()) ?? "";
    assert.match(details, new RegExp(n.name));
    for (const v of [n.meshAddress, n.host!, "voter", "0.1.0"]) assert.ok(details.includes(v), `${v} in ${details}`);
    const mine = graph.links.filter((l) => l.source === n.id || l.target === n.id);
    assert.equal(await page.locator("#details ul.links li").count(), mine.length);
    await page.screenshot({ path: join(artifactsDir(), "page-100-selected.png") });
    // A shared link: a new page at that URL (by name too, as a person would type it).
    const other = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await other.goto(`${served.url}#node=${n.name}`);
    await other.locator("#details").waitFor({ state: "visible", timeout: 15_000 });
    assert.equal(await other.evaluate(() => (window as unknown as { raptiformicaMap: MapHandle }).raptiformicaMap.selected()), n.id);
    assert.equal(await other.evaluate(() => location.hash), `#node=${n.id}`);
    await other.close();
    await page.click("#details-close");
    await page.waitForFunction(() => location.hash === "", null, { timeout: 5000 });
    // In the table view, a member's name is the link that selects it.
    const m = graph.nodes.find((x) => x.role === "proxy" && x.status === "alive")!;
    await page.click("#show-table");
    await page.click(`#nodes-table tr[data-id="${m.id}"] th a`);
    await page.waitForFunction((id) => location.hash === `#node=${id}`, m.id, { timeout: 5000 });
    assert.match((await page.locator("#details-title").textContent()) ?? "", new RegExp(m.name));
    await page.click("#show-graph");
    await page.click("#details-close");
  });

  it("finds members by name or address, and Enter selects the first", async () => {
    await page.fill("#search", "node-01");
    assert.equal(await page.locator("#search-count").textContent(), "10 of 100 match");
    assert.equal(await page.locator("#nodes-table tbody tr:not([hidden])").count(), 10);
    await page.press("#search", "Enter");
    const first = graph.nodes.find((n) => n.name === "node-010")!;
    await page.waitForFunction((id) => location.hash === `#node=${id}`, first.id, { timeout: 5000 });
    const byAddress = graph.nodes[42]!;
    await page.fill("#search", byAddress.meshAddress);
    assert.equal(await page.locator("#search-count").textContent(), "1 of 100 match");
    await page.fill("#search", "");
    assert.equal(await page.locator("#nodes-table tbody tr:not([hidden])").count(), 100);
  });

  it("shows a link's latency on hover", async () => {
    await page.click("#details-close").catch(() => undefined);
    // Where nothing else is drawn on top: of the links whose middle is on screen, the one whose
    // middle is farthest from every member.
    // Looked up again before each try (at most 6): the view may still be gliding to the member
    // the search before selected, and a moving view hides the tip and moves the link; a try is
    // made only once the link's middle has stayed put for 300 ms.
    let shown = false;
    let last = "";
    for (let attempt = 0; attempt < 6 && !shown; attempt++) {
      await page.waitForTimeout(500);
      const look = () => page.evaluate(() => {
        const m = (window as unknown as { raptiformicaMap: MapHandle }).raptiformicaMap;
        const d = m.drawn();
        const nodes = d.nodes.map((n) => m.whereIs(n.id)!);
        const box = document.querySelector("#graph-box")!;
        return d.edges.map((e) => {
          const at = m.whereIs(e.id)!;
          // Only a middle the pointer can reach: on the screen, with the graph itself under it
          // (the view may have glided to a member and left most links off screen).
          const under = document.elementFromPoint(at.x, at.y);
          const reachable = under !== null && box.contains(under);
          return { id: e.id, at, reachable, clear: Math.min(...nodes.map((n) => Math.hypot(n.x - at.x, n.y - at.y))) };
        });
      });
      const spots = await look();
      await page.waitForTimeout(300);
      const again = await look();
      const spot = spots.filter((x) => x.reachable && graph.links.find((l) => l.id === x.id)?.latencyMs !== undefined).sort((a, b) => b.clear - a.clear)[0];
      assert.ok(spot && spot.clear > 25, `a link with room around its middle: ${JSON.stringify(spot)}`);
      const now = again.find((x) => x.id === spot.id);
      last = JSON.stringify({ spot, now });
      if (!now || Math.hypot(now.at.x - spot.at.x, now.at.y - spot.at.y) > 1) continue;
      const at = now.at;
      await page.mouse.move(at.x - 40, at.y - 40);
      await page.mouse.move(at.x, at.y, { steps: 3 });
      shown = await page
        .locator("#tip")
        .waitFor({ state: "visible", timeout: 2000 })
        .then(() => true)
        .catch(() => false);
    }
    assert.ok(shown, `the tip shows when the pointer rests on a link (last try: ${last})`);
    const tip = (await page.locator("#tip").textContent()) ?? "";
    assert.match(tip, / ms, /, tip);
  });
});
