// The mesh map page: follows /api/events (server-sent events: the graph whenever it changes),
// draws the graph (graph-view.ts) and the same data as tables (what screen readers get, and
// the table view), the selected member's details, a search, and the selection in the URL.
import type { MapGraph, MapNode } from "../../ops/map/graph.ts";
import { findNode, formatBytes, formatLatency, formatUptime, hashFor, linksOf, matches, selectedInHash } from "./format.ts";
import { GraphView, ROLE_SHAPES, STATUS_COLOURS, type Drawn } from "./graph-view.ts";

performance.mark("map-script");

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page lacks #${id}`);
  return el as T;
};

/** One element with text and attributes; children appended in order. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

interface State {
  graph: MapGraph | undefined;
  /** When the graph arrived (ms, this browser's clock): uptimes count on from there. */
  receivedAt: number;
  selected: string | undefined;
  query: string;
  view: "graph" | "table";
}

const state: State = { graph: undefined, receivedAt: 0, selected: selectedInHash(location.hash), query: "", view: "graph" };
// Connect first: the server's answer is on its way while the drawing is set up.
follow();
const names = () => new Map((state.graph?.nodes ?? []).map((n) => [n.id, n.name]));
const uptimeNow = (n: MapNode) => (n.uptimeSeconds === undefined ? undefined : n.uptimeSeconds + (Date.now() - state.receivedAt) / 1000);

const view = new GraphView($("graph"), $("tip"), {
  select: (id) => select(id, { fromGraph: true }),
  drawn: (ms, layouts) => {
    drawnTimes.push(ms);
    $("graph").dataset["layouts"] = String(layouts);
  },
});
const drawnTimes: number[] = [];

function summary(g: MapGraph): string {
  const count = (s: string) => g.nodes.filter((n) => n.status === s).length;
  const up = g.links.filter((l) => l.up).length;
  const parts = [`${g.nodes.length} members: ${count("alive")} alive, ${count("failed")} failed, ${count("left")} left`];
  parts.push(g.reporting === 0 ? "no member reports its links yet" : `${up} links up (reported by ${g.reporting} of ${g.nodes.length})`);
  return parts.join(" · ");
}

function renderTables(g: MapGraph): void {
  const byName = names();
  const body = $("nodes-body");
  const rows = g.nodes.map((n) => {
    const up = linksOf(g.links, n.id).filter((x) => x.link.up).length;
    const name = el("a", { href: hashFor(n.id) }, n.name);
    const tr = el(
      "tr",
      { "data-id": n.id, "data-status": n.status },
      el("th", { scope: "row" }, name, n.self ? " (this member)" : ""),
      el("td", {}, n.status),
      el("td", {}, n.role ?? "-"),
      el("td", { class: "mono" }, n.meshAddress),
      el("td", {}, n.host ?? "-"),
      el("td", { "data-uptime": n.id }, formatUptime(uptimeNow(n))),
      el("td", {}, n.version ?? "-"),
      el("td", {}, String(up)),
    );
    if (n.self) tr.classList.add("self");
    if (n.id === state.selected) tr.setAttribute("aria-current", "true");
    tr.hidden = !matches(n, state.query);
    return tr;
  });
  body.replaceChildren(...rows);
  const links = $("links-body");
  links.replaceChildren(
    ...g.links.map((l) =>
      el(
        "tr",
        { "data-id": l.id, "data-up": String(l.up) },
        el("td", {}, byName.get(l.source) ?? l.source),
        el("td", {}, byName.get(l.target) ?? l.target),
        el("td", {}, l.up ? "up" : "down"),
        el("td", {}, formatLatency(l.latencyMs)),
        el("td", {}, formatBytes(l.bytes)),
        el("td", {}, formatUptime(l.uptimeSeconds)),
      ),
    ),
  );
  $("links-empty").hidden = g.links.length > 0;
  $("links-empty").textContent = g.reporting === 0 ? "No member reports its links yet." : "No links reported.";
}

function dl(entries: [string, string | Node][]): HTMLDListElement {
  return el("dl", {}, ...entries.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function renderDetails(): void {
  const panel = $("details");
  const g = state.graph;
  const n = g ? findNode(g.nodes, state.selected) : undefined;
  if (!g || !state.selected) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const body = $("details-body");
  if (!n) {
    $("details-title").textContent = "Not a member";
    body.replaceChildren(el("p", {}, `No member of this cluster is called or has the key ${state.selected}.`));
    return;
  }
  $("details-title").textContent = n.self ? `${n.name} (this member)` : n.name;
  const byName = names();
  const mine = linksOf(g.links, n.id);
  const linkItems = mine.map(({ link, other }) => {
    const name = byName.get(other) ?? other;
    const why = Object.values(link.ends).find((e) => e.lastError)?.lastError;
    const text = link.up ? `${name}: up, ${formatLatency(link.latencyMs)}, ${formatBytes(link.bytes)}, up ${formatUptime(link.uptimeSeconds)}` : `${name}: down${why ? ` (${why})` : ""}`;
    return el("li", { "data-up": String(link.up) }, text);
  });
  for (const p of n.loosePeerings) linkItems.push(el("li", { "data-up": String(p.up) }, `${p.key ? (byName.get(p.key) ?? `${p.key.slice(0, 12)}…`) : p.remote}: ${p.up ? "up" : "down"}${p.lastError ? ` (${p.lastError})` : ""}${p.key && !byName.has(p.key) ? " — no member" : ""}`));
  const links =
    linkItems.length > 0 ? el("ul", { class: "links" }, ...linkItems) : el("p", {}, n.linksReportedAt === undefined ? "It reports no links (yet)." : "It reports no peerings.");
  body.replaceChildren(
    dl([
      ["Status", n.status],
      ["Role", n.role ?? "-"],
      ["Mesh address", el("span", { class: "mono" }, n.meshAddress)],
      ["Host", n.host ?? "-"],
      ["Hostname", n.hostname ?? "-"],
      ["Uptime", el("span", { "data-uptime": n.id }, formatUptime(uptimeNow(n)))],
      ["raptiformica", n.version ?? "-"],
      ["Yggdrasil", n.yggdrasilMajor ?? "-"],
      ["Public key", el("span", { class: "mono key" }, n.id)],
    ]),
    el("h3", {}, `Links (${mine.filter((x) => x.link.up).length} up)`),
    links,
  );
}

function applySearch(): void {
  const g = state.graph;
  if (!g) return;
  const q = state.query.trim();
  const hits = g.nodes.filter((n) => matches(n, q));
  view.highlight(q === "" ? undefined : new Set(hits.map((n) => n.id)));
  for (const tr of $("nodes-body").querySelectorAll<HTMLTableRowElement>("tr")) {
    const n = g.nodes.find((x) => x.id === tr.dataset["id"]);
    tr.hidden = n ? !matches(n, q) : false;
  }
  $("search-count").textContent = q === "" ? "" : `${hits.length} of ${g.nodes.length} match`;
}

/** The member last brought into view: a live update keeps the view where the user left it. */
let revealed: string | undefined;

function select(id: string | undefined, o: { fromGraph?: boolean } = {}): void {
  const n = state.graph ? findNode(state.graph.nodes, id) : undefined;
  state.selected = n?.id ?? id;
  // The key, also for a name typed in the address bar: the link stays right after a rename.
  const hash = hashFor(state.selected);
  if (location.hash !== hash) history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
  view.select(n?.id);
  if (n && !o.fromGraph && n.id !== revealed) view.reveal(n.id);
  revealed = n?.id;
  for (const tr of $("nodes-body").querySelectorAll("tr")) {
    if (tr.getAttribute("data-id") === n?.id) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
  renderDetails();
}

function show(g: MapGraph): void {
  if (!state.graph) performance.mark("map-first-graph");
  state.graph = g;
  state.receivedAt = Date.now();
  $("summary").textContent = summary(g);
  renderTables(g);
  view.update(g);
  // A key from the address bar (or a name typed there) is resolved once the graph is in.
  select(state.selected);
  applySearch();
  $("problems").replaceChildren(...g.problems.map((p) => el("li", {}, p.message)));
  $("problems-box").hidden = g.problems.length === 0;
  document.documentElement.dataset["nodes"] = String(g.nodes.length);
}

function setView(v: "graph" | "table"): void {
  state.view = v;
  $("show-graph").setAttribute("aria-pressed", String(v === "graph"));
  $("show-table").setAttribute("aria-pressed", String(v === "table"));
  document.body.dataset["view"] = v;
  if (v === "graph") view.cy.resize();
}

function legend(): void {
  const items: Node[] = [];
  for (const [status, colour] of Object.entries(STATUS_COLOURS)) {
    if (status === "unknown") continue;
    items.push(el("li", {}, el("span", { class: `swatch status-${status}`, style: `background:${colour}` }), status));
  }
  for (const role of Object.keys(ROLE_SHAPES)) items.push(el("li", {}, el("span", { class: `shape shape-${role}` }), role === "none" ? "no role (a failed proxy)" : role));
  items.push(el("li", {}, el("span", { class: "swatch self" }), "this member"));
  items.push(el("li", {}, "line width: traffic; hover a line for its latency"));
  $("legend").replaceChildren(el("ul", {}, ...items));
}

function follow(): void {
  const live = $("live");
  const es = new EventSource("api/events");
  es.addEventListener("open", () => {
    live.textContent = "live";
    live.dataset["state"] = "live";
  });
  es.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.dataset["state"] = "down";
  });
  es.addEventListener("graph", (e) => {
    $("problem").hidden = true;
    show(JSON.parse((e as MessageEvent<string>).data) as MapGraph);
  });
  es.addEventListener("problem", (e) => {
    const { message } = JSON.parse((e as MessageEvent<string>).data) as { message: string };
    $("problem").textContent = message;
    $("problem").hidden = false;
  });
}

$("search").addEventListener("input", (e) => {
  state.query = (e.target as HTMLInputElement).value;
  applySearch();
});
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const first = state.graph?.nodes.find((n) => matches(n, state.query));
  if (first) select(first.id);
});
$("show-graph").addEventListener("click", () => setView("graph"));
$("show-table").addEventListener("click", () => setView("table"));
$("details-close").addEventListener("click", () => select(undefined));
window.addEventListener("hashchange", () => select(selectedInHash(location.hash)));
// Uptimes count on between updates.
setInterval(() => {
  const g = state.graph;
  if (!g) return;
  for (const cell of document.querySelectorAll<HTMLElement>("[data-uptime]")) {
    const n = g.nodes.find((x) => x.id === cell.dataset["uptime"]);
    if (n) cell.textContent = formatUptime(uptimeNow(n));
  }
}, 1000);

/** For browser automation (tests, benchmark): what is drawn, and how long each layout took. */
(window as unknown as { raptiformicaMap: unknown }).raptiformicaMap = Object.freeze({
  drawn: (): Drawn => view.drawn(),
  whereIs: (id: string) => view.whereIs(id),
  graph: () => state.graph,
  selected: () => state.selected,
  layoutTimes: () => [...drawnTimes],
});

legend();
setView("graph");
