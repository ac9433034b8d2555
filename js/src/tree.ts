// Tree view: a reasoning tree (or a reflect chain, or a debate's layered graph) drawn on a
// canvas. Mirrors reflectnb/widgets/tree.py.
//
// Why a canvas: 10,000 nodes as DOM/SVG elements make every zoom and pan slow; a canvas
// draws only what is inside the viewport (culling), labels only when zoomed in. Layout
// runs in a Web Worker (tree_layout.ts). Model text never becomes markup: it is painted
// with fillText or shown through textContent.
import { addStyle, clear, el, heat, WidgetModel } from "./dom";
import { Layout, LayoutInput, layoutTree } from "./tree_layout";

/** Columns of the nodes (index i = node id i). */
export interface NodeColumns {
  id: number[]; parent: (number | null)[]; depth: number[]; value: (number | null)[];
  visits: number[]; status: string[]; iteration: number[]; text: string[]; lane?: number[];
}

export interface TreeState {
  title: string;
  status: "running" | "completed" | "interrupted" | "failed";
  layout: "tree" | "chain" | "layered";
  nodes: NodeColumns;
  edges: [number, number][];
  best_path: number[];
  selected: number | null;
  details: Record<string, unknown>;
  stop_requested: boolean;
}

export const DX = 120; // pixels per leaf column at zoom 1 (room for a label)
export const DY = 70; // pixels per depth row at zoom 1
const R = 7; // node radius in pixels (capped: nodes do not grow past it)
const PAD = 24;
const LABEL_MIN_PX = 60; // draw labels once leaf columns are this far apart on screen
const CHAR_PX = 6.5; // average width of an 11px sans-serif character
const STATUS_COLOR: Record<string, string> = {
  pruned: "#cbd5e1", terminal: "#f58518", selected: "#54a24b", expanded: "#4c78a8",
};

/** Which nodes are shown: iteration ≤ replay and no collapsed ancestor. */
export function visibleNodes(nodes: NodeColumns, replay: number, collapsed: Set<number>): boolean[] {
  const n = nodes.id.length;
  const state = new Int8Array(n); // 0 unknown, 1 visible, 2 hidden
  const out: boolean[] = new Array(n).fill(false);
  for (let i = 0; i < n; i++) {
    const chain: number[] = [];
    let cur: number | null = i;
    let verdict = 1;
    while (cur !== null && cur !== undefined && cur >= 0 && cur < n) {
      if (state[cur]) { verdict = state[cur]; break; }
      chain.push(cur);
      if (nodes.iteration[cur] > replay) { verdict = 2; break; }
      const p: number | null = nodes.parent[cur];
      if (p !== null && p !== undefined && collapsed.has(p)) { verdict = 2; break; }
      cur = p;
    }
    for (const c of chain) state[c] = verdict as 1 | 2;
    out[i] = state[i] === 1;
  }
  return out;
}

/** Visible nodes whose text contains `query` (case-insensitive), in id order. */
export function searchNodes(nodes: NodeColumns, visible: boolean[], query: string): number[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const out: number[] = [];
  for (let i = 0; i < nodes.text.length; i++) if (visible[i] && nodes.text[i].toLowerCase().includes(q)) out.push(i);
  return out;
}

/** Pan and zoom: screen = world * k + (tx, ty). */
export interface Transform { k: number; tx: number; ty: number }

/** Indices of laid-out nodes inside the viewport (with a margin of one node). */
export function nodesInView(layout: Layout, t: Transform, width: number, height: number): number[] {
  const out: number[] = [];
  const m = R * 2;
  for (let i = 0; i < layout.x.length; i++) {
    const x = layout.x[i];
    if (Number.isNaN(x)) continue;
    const sx = (PAD + x * DX) * t.k + t.tx;
    const sy = (PAD + layout.y[i] * DY) * t.k + t.ty;
    if (sx >= -m && sx <= width + m && sy >= -m && sy <= height + m) out.push(i);
  }
  return out;
}

function fmt(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : String(Number(v.toPrecision(3)));
}

/** Lowest and highest finite value of a tree. */
export interface ValueRange { lo: number; hi: number }

/** The range of the finite values (null when there is none). */
export function valueRange(values: (number | null)[]): ValueRange | null {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? { lo, hi } : null;
}

/**
 * Where `v` lies in its tree's range, 0 (lowest) to 1 (highest). Values are on different scales
 * (ToT sums 0.001/1/20 over samples: 0.001..60; MCTS and verifiers: 0..1), so the colour is
 * relative to the tree. A tree whose values are all equal gets the neutral middle, 0.5.
 */
export function valueShade(v: number, range: ValueRange | null): number {
  if (!range || !(range.hi > range.lo)) return 0.5;
  return Math.min(1, Math.max(0, (v - range.lo) / (range.hi - range.lo)));
}

function nodeColor(nodes: NodeColumns, i: number, range: ValueRange | null): string {
  const v = nodes.value[i];
  if (nodes.status[i] === "pruned") return STATUS_COLOR.pruned;
  if (v === null || v === undefined || !Number.isFinite(v)) return STATUS_COLOR[nodes.status[i]] ?? "#94a3b8";
  return heat(valueShade(v, range), 145); // green scale: darker = higher value in this tree
}

const WORKER_SOURCE = `const layoutTree = ${layoutTree.toString()};
onmessage = (e) => postMessage({ seq: e.data.seq, layout: layoutTree(e.data.input) });`;

/** What the Layouter needs of a Worker (a fake one in tests). */
export type LayoutWorker = Pick<Worker, "onmessage" | "onerror" | "postMessage" | "terminate">;

function blobWorker(): LayoutWorker | null {
  if (typeof Worker === "undefined" || typeof Blob === "undefined" || typeof URL.createObjectURL !== "function") return null;
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  return new Worker(url);
}

/**
 * Runs layouts in a Web Worker when one can be made, else in place (same result). If the
 * worker fails (a page policy, a crash), the requests it held and every later one are laid
 * out in place, so the view never waits for an answer that will not come.
 */
export class Layouter {
  private worker: LayoutWorker | null = null;
  private seq = 0;
  private pending = new Map<number, { input: LayoutInput; resolve: (l: Layout) => void }>();

  constructor(makeWorker: () => LayoutWorker | null = blobWorker) {
    try {
      this.worker = makeWorker();
    } catch {
      this.worker = null; // e.g. a page whose policy forbids blob: workers
    }
    if (!this.worker) return;
    this.worker.onmessage = (e: MessageEvent) => {
      const job = this.pending.get(e.data.seq);
      this.pending.delete(e.data.seq);
      job?.resolve(e.data.layout);
    };
    this.worker.onerror = () => this.fallBack();
  }

  get inWorker(): boolean { return this.worker !== null; }

  run(input: LayoutInput): Promise<Layout> {
    if (!this.worker) return Promise.resolve(layoutTree(input));
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(seq, { input, resolve });
      try {
        this.worker!.postMessage({ seq, input });
      } catch {
        this.fallBack();
      }
    });
  }

  /** Drop the worker and lay out what it was asked for here. */
  private fallBack(): void {
    this.close();
    const jobs = [...this.pending.values()];
    this.pending.clear();
    for (const job of jobs) job.resolve(layoutTree(job.input));
  }

  close(): void { this.worker?.terminate(); this.worker = null; }
}

/** Test and benchmark hook, set on the root element as `root.rnbTree`. */
export interface TreeHook { positionOf(id: number): { x: number; y: number } | null }

export function render({ model, el: host }: { model: WidgetModel<TreeState>; el: HTMLElement }): () => void {
  const started = performance.now();
  const root = el("div", "rnb rnb-tree");
  addStyle(root);
  const style = document.createElement("style");
  style.textContent = `.rnb-tree-bar { display: flex; gap: 6px; align-items: center; margin-bottom: 4px; flex-wrap: wrap; }
.rnb-tree-canvas { border: 1px solid #e2e8f0; cursor: grab; display: block; width: 100%; touch-action: none; }
.rnb-tree-details { font-size: 12px; border-left: 3px solid #94a3b8; padding: 2px 8px; margin-top: 4px; max-height: 220px; overflow: auto; }
.rnb-tree-details pre { white-space: pre-wrap; margin: 2px 0; font-family: var(--jp-code-font-family, monospace); }`;
  root.appendChild(style);
  const head = el("div", "rnb-head");
  const title = el("b");
  const status = el("span", "rnb-status");
  const stop = el("button", "rnb-stop rnb-tree-stop", "■ stop");
  head.append(title, status, stop);
  const bar = el("div", "rnb-tree-bar");
  const zoomIn = el("button", "rnb-tree-zoom-in", "+");
  const zoomOut = el("button", "rnb-tree-zoom-out", "−");
  const fit = el("button", "rnb-tree-fit", "fit");
  const search = el("input", "rnb-tree-search");
  search.type = "search";
  search.placeholder = "search text (Enter: next)";
  const replay = el("input", "rnb-tree-replay");
  replay.type = "range";
  replay.min = "0";
  const replayLabel = el("span", "rnb-label");
  const info = el("span", "rnb-label");
  bar.append(zoomIn, zoomOut, fit, search, el("span", "rnb-label", "iteration"), replay, replayLabel, info);
  const canvas = el("canvas", "rnb-tree-canvas");
  const details = el("div", "rnb-tree-details");
  root.append(head, bar, canvas, details);
  host.appendChild(root);

  const layouter = new Layouter();
  const collapsed = new Set<number>();
  let t: Transform = { k: 1, tx: 0, ty: 0 };
  let layout: Layout = { x: [], y: [], width: 0, height: 0 };
  let visible: boolean[] = [];
  let matches: number[] = [];
  let matchAt = -1;
  let best = new Set<number>();
  let firstFrame = true;
  let fitted = false;
  let frame = 0;
  let layoutSeq = 0;
  let lastMax = -1;
  let range: ValueRange | null = null; // of the values in the tree, for colours

  const nodes = () => model.get("nodes") ?? { id: [], parent: [], depth: [], value: [], visits: [], status: [], iteration: [], text: [] };
  const size = () => ({ w: canvas.clientWidth || 800, h: canvas.clientHeight || 420 });
  const screen = (i: number) => ({ x: (PAD + layout.x[i] * DX) * t.k + t.tx, y: (PAD + layout.y[i] * DY) * t.k + t.ty });

  function fitView(): void {
    const { w, h } = size();
    const worldW = PAD * 2 + Math.max(0, layout.width - 1) * DX;
    const worldH = PAD * 2 + Math.max(0, layout.height - 1) * DY;
    const k = Math.min(1.5, Math.max(0.0005, Math.min(w / worldW, h / worldH)));
    t = { k, tx: (w - worldW * k) / 2, ty: (h - worldH * k) / 2 };
  }

  function draw(): void {
    frame = 0;
    const { w, h } = size();
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * ratio)) canvas.width = Math.round(w * ratio);
    if (canvas.height !== Math.round(h * ratio)) canvas.height = Math.round(h * ratio);
    const inView = nodesInView(layout, t, w, h);
    const ctx = canvas.getContext ? canvas.getContext("2d") : null;
    if (ctx) paint(ctx, ratio, inView, w, h);
    root.dataset.drawn = String(inView.length);
    root.dataset.nodes = String(visible.filter(Boolean).length);
    root.dataset.zoom = t.k.toFixed(4);
    if (root.dataset.state === "ready" && firstFrame) {
      firstFrame = false;
      root.dataset.firstRenderMs = (performance.now() - started).toFixed(1);
    }
  }

  function paint(ctx: CanvasRenderingContext2D, ratio: number, inView: number[], w: number, h: number): void {
    const cols = nodes();
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const shown = new Set(inView);
    // edges into shown nodes (and out of them, so long edges to off-screen parents still show)
    ctx.lineWidth = 1;
    for (const bestPass of [false, true]) {
      ctx.strokeStyle = bestPass ? "#111827" : "#cbd5e1";
      ctx.lineWidth = bestPass ? 3 : 1;
      ctx.beginPath();
      for (let i = 0; i < layout.x.length; i++) {
        const p = cols.parent[i];
        if (p === null || p === undefined || Number.isNaN(layout.x[i]) || Number.isNaN(layout.x[p] ?? NaN)) continue;
        if (!shown.has(i) && !shown.has(p)) continue;
        if ((best.has(i) && best.has(p)) !== bestPass) continue;
        const a = screen(p), b = screen(i);
        ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y);
      }
      ctx.stroke();
    }
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = "#a78bfa";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [a0, b0] of model.get("edges") ?? []) {
      if (Number.isNaN(layout.x[a0] ?? NaN) || Number.isNaN(layout.x[b0] ?? NaN)) continue;
      if (!shown.has(a0) && !shown.has(b0)) continue;
      const a = screen(a0), b = screen(b0);
      ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    const r = Math.max(2, Math.min(R, R * t.k * 4));
    const matchSet = new Set(matches);
    const selected = model.get("selected");
    for (const i of inView) {
      const s = screen(i);
      ctx.beginPath();
      ctx.arc(s.x, s.y, r, 0, Math.PI * 2);
      ctx.fillStyle = nodeColor(cols, i, range);
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#64748b"; // an outline, so low values (near white) still show
      ctx.stroke();
      if (best.has(i) || matchSet.has(i) || i === selected || collapsed.has(i)) {
        ctx.lineWidth = i === selected ? 3 : 2;
        ctx.strokeStyle = i === selected ? "#dc2626" : matchSet.has(i) ? "#7c3aed" : "#111827";
        if (collapsed.has(i)) ctx.setLineDash([2, 2]);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    const room = Math.floor((DX * t.k - r - 8) / CHAR_PX); // characters that fit before the next column
    if (DX * t.k >= LABEL_MIN_PX && room >= 4) {
      ctx.fillStyle = "#334155";
      ctx.font = "11px sans-serif";
      for (const i of inView) {
        const s = screen(i);
        const text = (cols.text[i] ?? "").replace(/\s+/g, " ");
        ctx.fillText(text.length > room ? text.slice(0, room - 1) + "…" : text, s.x + r + 3, s.y + 4);
      }
    }
  }

  function schedule(): void {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function relayout(): void {
    const cols = nodes();
    const iters = cols.iteration.length ? Math.max(...cols.iteration) : 0;
    replay.max = String(iters);
    if (lastMax < 0 || Number(replay.value) >= lastMax) replay.value = String(iters); // follow a growing tree
    lastMax = iters;
    replayLabel.textContent = `≤ ${replay.value} of ${iters}`;
    visible = visibleNodes(cols, Number(replay.value), collapsed);
    best = new Set(model.get("best_path") ?? []);
    range = valueRange(cols.value);
    const seq = ++layoutSeq;
    root.dataset.state = "layout";
    const mode = model.get("layout") === "layered" ? "layered" : "tree";
    const lane = cols.lane ?? cols.depth.map(() => 0);
    layouter.run({ parent: cols.parent, depth: cols.depth, lane, visible, mode }).then((l) => {
      if (seq !== layoutSeq) return; // a newer layout is on its way
      layout = l;
      if (!fitted && l.width > 0) { fitView(); fitted = true; }
      root.dataset.state = "ready";
      info.textContent = `${visible.filter(Boolean).length} of ${cols.id.length} nodes`;
      draw();
    });
  }

  function showDetails(): void {
    clear(details);
    const id = model.get("selected");
    const cols = nodes();
    if (id === null || id === undefined || id < 0 || id >= cols.id.length) {
      details.appendChild(el("div", "rnb-label", "click a node to see its text, value, visits and prompt; double-click folds it"));
      return;
    }
    const d = model.get("details") ?? {};
    const same = d["id"] === id;
    details.appendChild(el("div", "rnb-label",
      `#${id} · ${cols.status[id]} · value ${fmt(cols.value[id])} · visits ${cols.visits[id]} · iteration ${cols.iteration[id]}`));
    details.appendChild(el("pre", "rnb-text", cols.text[id]));
    if (same && typeof d["prompt"] === "string" && d["prompt"]) {
      details.appendChild(el("div", "rnb-label", "prompt"));
      details.appendChild(el("pre", "rnb-text", d["prompt"] as string));
    }
    if (same && d["attributes"] && Object.keys(d["attributes"] as object).length) {
      details.appendChild(el("pre", "rnb-text", JSON.stringify(d["attributes"], null, 1)));
    }
  }

  function select(id: number | null): void {
    if (!model.set) return;
    model.set("selected", id);
    model.save_changes?.();
    showDetails();
    schedule();
  }

  function hit(clientX: number, clientY: number): number | null {
    const box = canvas.getBoundingClientRect();
    const px = clientX - box.left, py = clientY - box.top;
    const r = Math.max(6, Math.min(R, R * t.k * 4) + 3);
    let bestId: number | null = null, bestD = r * r;
    for (let i = 0; i < layout.x.length; i++) {
      if (Number.isNaN(layout.x[i])) continue;
      const s = screen(i);
      const d = (s.x - px) ** 2 + (s.y - py) ** 2;
      if (d <= bestD) { bestD = d; bestId = i; }
    }
    return bestId;
  }

  function zoomAt(factor: number, cx: number, cy: number): void {
    const k = Math.min(20, Math.max(0.0005, t.k * factor));
    t = { k, tx: cx - ((cx - t.tx) / t.k) * k, ty: cy - ((cy - t.ty) / t.k) * k };
    schedule();
  }

  // --- interaction ---------------------------------------------------------------------
  let drag: { x: number; y: number; moved: boolean } | null = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
    if (drag.moved) { t = { ...t, tx: t.tx + dx, ty: t.ty + dy }; drag.x = e.clientX; drag.y = e.clientY; schedule(); }
  });
  canvas.addEventListener("pointerup", () => { setTimeout(() => { drag = null; }, 0); });
  canvas.addEventListener("click", (e) => {
    if (drag?.moved) return;
    const id = hit(e.clientX, e.clientY);
    if (id !== null) select(id);
  });
  canvas.addEventListener("dblclick", (e) => {
    const id = hit(e.clientX, e.clientY);
    if (id === null) return;
    if (collapsed.has(id)) collapsed.delete(id); else collapsed.add(id);
    relayout();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = canvas.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  zoomIn.addEventListener("click", () => { const { w, h } = size(); zoomAt(1.5, w / 2, h / 2); });
  zoomOut.addEventListener("click", () => { const { w, h } = size(); zoomAt(1 / 1.5, w / 2, h / 2); });
  fit.addEventListener("click", () => { fitView(); schedule(); });
  replay.addEventListener("input", () => relayout());
  search.addEventListener("input", () => { matches = searchNodes(nodes(), visible, search.value); matchAt = -1; schedule(); });
  search.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !matches.length) return;
    matchAt = (matchAt + 1) % matches.length;
    const id = matches[matchAt];
    const { w, h } = size();
    const s = screen(id);
    t = { ...t, tx: t.tx + w / 2 - s.x, ty: t.ty + h / 2 - s.y };
    select(id);
  });
  stop.addEventListener("click", () => { stop.disabled = true; model.send({ type: "stop" }); });

  const head_ = () => {
    title.textContent = model.get("title");
    const st = model.get("status");
    status.textContent = model.get("stop_requested") && st === "running" ? "stopping…" : st;
    status.className = `rnb-status ${st}`;
    stop.style.display = st === "running" ? "" : "none";
  };
  const hook: TreeHook = {
    positionOf(id: number) {
      if (id < 0 || id >= layout.x.length || Number.isNaN(layout.x[id])) return null;
      const s = screen(id);
      const { w, h } = size();
      if (s.x < 0 || s.y < 0 || s.x > w || s.y > h) return null;
      const box = canvas.getBoundingClientRect();
      return { x: box.left + s.x, y: box.top + s.y };
    },
  };
  (root as HTMLElement & { rnbTree?: TreeHook }).rnbTree = hook;

  const handlers: [string, () => void][] = [
    ["change:nodes", relayout], ["change:best_path", relayout], ["change:layout", relayout],
    ["change:edges", schedule], ["change:title", head_], ["change:status", head_], ["change:stop_requested", head_],
    ["change:selected", () => { showDetails(); schedule(); }], ["change:details", showDetails],
  ];
  handlers.forEach(([e, f]) => model.on(e, f));
  head_();
  showDetails();
  relayout();
  return () => {
    handlers.forEach(([e, f]) => model.off?.(e, f));
    layouter.close();
    if (frame) cancelAnimationFrame(frame);
  };
}

export default { render };
