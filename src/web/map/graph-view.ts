// The drawing: a force-directed graph (cytoscape, its cose layout) of the members and the links
// that are up. Colour = status, shape = role, a blue ring = this member, width = traffic.
import cytoscape from "cytoscape";
import type { MapGraph, MapLink, MapNode } from "../../ops/map/graph.ts";
import { formatBytes, formatLatency, formatUptime, linkWidth } from "./format.ts";

export const STATUS_COLOURS: Readonly<Record<string, string>> = { alive: "#2e7d32", failed: "#c62828", left: "#757575", unknown: "#9e9e9e" };
/** The role's mark: a shape (the legend says which), since colour already carries the status. */
export const ROLE_SHAPES: Readonly<Record<string, cytoscape.Css.NodeShape>> = { leader: "star", voter: "diamond", learner: "triangle", proxy: "ellipse", none: "round-rectangle" };

const STYLE: cytoscape.StylesheetJson = [
  {
    selector: "node",
    style: {
      "background-color": "data(colour)",
      shape: "data(shape)" as never,
      width: 26,
      height: 26,
      label: "data(label)",
      "font-size": 11,
      "font-family": "system-ui, sans-serif",
      color: "#1a1a1a",
      "text-valign": "bottom",
      "text-margin-y": 4,
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.8,
      "text-background-padding": "1px",
      // At 100 nodes zoomed out, labels too small to read are left out rather than smeared.
      "min-zoomed-font-size": 7,
      "border-width": 1,
      "border-color": "#ffffff",
    },
  },
  { selector: "node[status = 'failed']", style: { "border-style": "dashed", "border-width": 2, "border-color": "#7f0000" } },
  { selector: "node[status = 'left']", style: { opacity: 0.6 } },
  { selector: "node[?self]", style: { "border-width": 6, "border-color": "#1565c0", "border-style": "double", width: 36, height: 36, "font-weight": "bold", color: "#0d47a1" } },
  { selector: "node:selected", style: { "underlay-color": "#ffb300", "underlay-opacity": 0.55, "underlay-padding": 7 } },
  { selector: "node.faded", style: { opacity: 0.15 } },
  { selector: "node.match", style: { "underlay-color": "#1565c0", "underlay-opacity": 0.3, "underlay-padding": 6 } },
  {
    selector: "edge",
    style: { width: "data(width)", "line-color": "#8a9aa6", "curve-style": "haystack", "haystack-radius": 0, opacity: 0.85 },
  },
  { selector: "edge.faded", style: { opacity: 0.08 } },
  { selector: "edge.near", style: { "line-color": "#1565c0", opacity: 1 } },
];

/** What a browser automation (the tests, the benchmark) can read of the drawing. */
export interface Drawn {
  readonly nodes: { id: string; name: string; status: string; role?: string; self: boolean }[];
  readonly edges: { id: string; source: string; target: string; width: number }[];
}

export interface GraphViewEvents {
  /** A node was clicked (or tapped), or the background (undefined). */
  select(id: string | undefined): void;
  /** A layout finished and was drawn: how long it took from its start, ms. */
  drawn(ms: number, layouts: number): void;
}

function nodeData(n: MapNode): cytoscape.NodeDataDefinition {
  return {
    id: n.id,
    label: n.self ? `${n.name} (this member)` : n.name,
    name: n.name,
    status: n.status,
    role: n.role ?? "none",
    self: n.self,
    colour: STATUS_COLOURS[n.status] ?? STATUS_COLOURS["unknown"],
    shape: ROLE_SHAPES[n.role ?? "none"],
  };
}

function edgeData(l: MapLink, busiest: number): cytoscape.EdgeDataDefinition {
  return { id: l.id, source: l.source, target: l.target, width: linkWidth(l.bytes, busiest), latencyMs: l.latencyMs ?? -1, bytes: l.bytes ?? -1, uptime: l.uptimeSeconds ?? -1 };
}

/**
 * The graph view in `container`, with a hover tip for links in `tip`. `update` takes each new
 * graph: elements are added, removed and restyled in place; the layout runs again only when
 * members or links came or went, from the positions they had (so the picture does not jump).
 */
export class GraphView {
  readonly cy: cytoscape.Core;
  private layouts = 0;
  private running: cytoscape.Layouts | undefined;
  private names = new Map<string, string>();

  constructor(
    container: HTMLElement,
    private readonly tip: HTMLElement,
    private readonly on: GraphViewEvents,
  ) {
    this.cy = cytoscape({ container, style: STYLE, minZoom: 0.15, maxZoom: 4, boxSelectionEnabled: false, selectionType: "single" });
    this.cy.on("tap", "node", (e) => this.on.select(e.target.id()));
    this.cy.on("tap", (e) => {
      if (e.target === this.cy) this.on.select(undefined);
    });
    this.cy.on("mouseover tapstart", "edge", (e) => this.showTip(e.target as cytoscape.EdgeSingular, e.renderedPosition));
    this.cy.on("mouseout", "edge", () => (this.tip.hidden = true));
    this.cy.on("viewport", () => (this.tip.hidden = true));
  }

  update(g: MapGraph): void {
    const busiest = Math.max(0, ...g.links.map((l) => l.bytes ?? 0));
    this.names = new Map(g.nodes.map((n) => [n.id, n.name]));
    const nodes = new Map(g.nodes.map((n) => [n.id, nodeData(n)]));
    // Only links that are up are drawn: a cut link disappears (its ends list it as down).
    const edges = new Map(g.links.filter((l) => l.up && nodes.has(l.source) && nodes.has(l.target)).map((l) => [l.id, edgeData(l, busiest)]));
    let changed = this.layouts === 0;
    const cy = this.cy;
    cy.batch(() => {
      cy.elements().forEach((el) => {
        const id = el.id();
        if ((el.isNode() && !nodes.has(id)) || (el.isEdge() && !edges.has(id))) {
          cy.remove(el);
          changed = true;
        }
      });
      const placed = cy.nodes();
      const centre = placed.length > 0 ? placed.boundingBox() : { x1: 0, y1: 0, w: 0, h: 0 };
      for (const [id, data] of nodes) {
        const el = cy.getElementById(id);
        if (el.nonempty()) el.data(data);
        else {
          // A newcomer starts next to a member it links to, else in the middle.
          const link = g.links.find((l) => l.up && (l.source === id || l.target === id));
          const next = link ? cy.getElementById(link.source === id ? link.target : link.source) : undefined;
          const at = next?.nonempty() ? { x: next.position("x") + 30, y: next.position("y") + 30 } : { x: centre.x1 + centre.w / 2, y: centre.y1 + centre.h / 2 };
          cy.add({ group: "nodes", data, position: at });
          changed = true;
        }
      }
      for (const [id, data] of edges) {
        const el = cy.getElementById(id);
        if (el.nonempty()) el.data(data);
        else {
          cy.add({ group: "edges", data });
          changed = true;
        }
      }
    });
    if (changed) this.layout();
  }

  /** Marks the selected node (or none) and its links. */
  select(id: string | undefined): void {
    this.cy.batch(() => {
      this.cy.elements().unselect().removeClass("near");
      if (!id) return;
      const n = this.cy.getElementById(id);
      if (n.empty()) return;
      n.select();
      n.connectedEdges().addClass("near");
    });
  }

  /** Brings a node into view. */
  reveal(id: string): void {
    const n = this.cy.getElementById(id);
    if (n.nonempty()) this.cy.animate({ center: { eles: n }, zoom: Math.max(this.cy.zoom(), 1) }, { duration: 250 });
  }

  /** Fades all but the matching nodes (and their links); `undefined` shows all. */
  highlight(ids: ReadonlySet<string> | undefined): void {
    this.cy.batch(() => {
      this.cy.elements().removeClass("faded match");
      if (!ids) return;
      this.cy.nodes().forEach((n) => void n.addClass(ids.has(n.id()) ? "match" : "faded"));
      this.cy.edges().forEach((e) => {
        if (!ids.has(e.source().id()) && !ids.has(e.target().id())) e.addClass("faded");
      });
    });
  }

  drawn(): Drawn {
    return {
      nodes: this.cy.nodes().map((n) => ({ id: n.id(), name: n.data("name") as string, status: n.data("status") as string, ...(n.data("role") !== "none" ? { role: n.data("role") as string } : {}), self: Boolean(n.data("self")) })),
      edges: this.cy.edges().map((e) => ({ id: e.id(), source: e.source().id(), target: e.target().id(), width: e.data("width") as number })),
    };
  }

  /** Where a node, or an edge's middle, is drawn, in page pixels (for automation: clicking, hovering). */
  whereIs(id: string): { x: number; y: number } | undefined {
    const e = this.cy.getElementById(id);
    if (e.empty()) return undefined;
    const at = e.isEdge() ? e.renderedMidpoint() : (e as cytoscape.NodeSingular).renderedPosition();
    const box = this.cy.container()?.getBoundingClientRect();
    return box ? { x: box.left + at.x, y: box.top + at.y } : undefined;
  }

  private layout(): void {
    this.running?.stop();
    const first = this.layouts === 0;
    const started = performance.now();
    performance.mark("map-layoutstart");
    document.documentElement.dataset["layout"] = "running";
    const n = this.cy.nodes().length;
    const layout = this.cy.layout({
      name: "cose",
      animate: false,
      randomize: first,
      fit: first,
      padding: 30,
      // Spread that keeps 100 members and their labels apart on a screen.
      idealEdgeLength: () => (n > 40 ? 70 : 100),
      nodeRepulsion: () => (n > 40 ? 60_000 : 400_000),
      nodeOverlap: 10,
      gravity: n > 40 ? 0.6 : 1,
      componentSpacing: 60,
      numIter: n > 40 ? 600 : 1000,
      coolingFactor: n > 40 ? 0.9 : 0.95,
    } as cytoscape.CoseLayoutOptions);
    this.running = layout;
    layout.one("layoutstop", () => {
      if (this.running !== layout) return;
      this.running = undefined;
      this.layouts++;
      // A few members fitted to the screen would be drawn huge: no closer than 1.5 at first.
      if (first && this.cy.zoom() > 1.5) {
        this.cy.zoom(1.5);
        this.cy.center();
      }
      performance.mark("map-layoutstop");
      // Drawn: the frame after the renderer has painted the final positions.
      this.cy.one("render", () =>
        requestAnimationFrame(() => {
          performance.mark("map-drawn");
          document.documentElement.dataset["layout"] = "stopped";
          this.on.drawn(performance.now() - started, this.layouts);
        }),
      );
      this.cy.forceRender();
    });
    layout.run();
  }

  private showTip(e: cytoscape.EdgeSingular, at: cytoscape.Position): void {
    const latency = e.data("latencyMs") as number;
    const bytes = e.data("bytes") as number;
    const uptime = e.data("uptime") as number;
    const a = this.names.get(e.source().id()) ?? e.source().id();
    const b = this.names.get(e.target().id()) ?? e.target().id();
    this.tip.textContent = `${a} — ${b}: ${latency >= 0 ? formatLatency(latency) : "latency unknown"}, ${bytes >= 0 ? formatBytes(bytes) : "traffic unknown"}, up ${uptime >= 0 ? formatUptime(uptime) : "-"}`;
    this.tip.style.left = `${Math.round(at.x + 12)}px`;
    this.tip.style.top = `${Math.round(at.y + 12)}px`;
    this.tip.hidden = false;
  }
}
