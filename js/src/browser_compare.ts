// Two stored runs side by side in the run browser: both answers, the word diff of the answers, an overlay
// chart of per-token entropy (plain SVG built here, no chart library, works offline), and evaluation items.
// Mirrors reflectnb/widgets/browser_compare.py. Run text is untrusted: textContent only; the chart's
// attributes are built from numbers.
import { clear, el } from "./dom";

/** One side of a comparison: `run_header` plus the evaluation item's outcome. */
export interface CompareRun {
  run_id: string; kind: string; model: string; status: string; task: string | null; final_answer: string | null;
  error: string | null; seconds: number | null; completion_tokens: number | null; tags: string[];
  outcome: Record<string, unknown> | null;
}

/** Per-token entropy of a run's last generation (averaged into at most 1000 points by the kernel). */
export interface Curve { positions: number[]; entropy: (number | null)[]; tokens: number; mean: number | null }

/** One evaluation item, both sides' outcomes. */
export interface ItemRow {
  item_id: string; gold: string | null; differs: boolean;
  a_predicted: string | null; a_correct: boolean | null; a_run_id: string | null;
  b_predicted: string | null; b_correct: boolean | null; b_run_id: string | null;
}

/** What `RunBrowser.compare` sends (`reflectnb/widgets/browser_compare.py`). */
export interface Comparison {
  runs: [CompareRun, CompareRun]; entropy: [Curve, Curve]; diff: { op: string; a: string; b: string }[];
  similarity: number; items: ItemRow[]; items_total: number;
  summary: { a: { items: number; correct: number }; b: { items: number; correct: number }; differs: number } | null;
}

export const SIDE_COLOURS = ["#2563eb", "#ea580c"];
const SVG = "http://www.w3.org/2000/svg";

/** An SVG path through the points, broken where a value is missing (numbers only, never text). */
export function linePath(xs: number[], ys: (number | null)[], x: (v: number) => number, y: (v: number) => number): string {
  const parts: string[] = [];
  let pen = "M";
  xs.forEach((value, i) => {
    const v = ys[i];
    if (v === null || v === undefined || !Number.isFinite(v)) { pen = "M"; return; }
    parts.push(`${pen}${x(value).toFixed(1)},${y(v).toFixed(1)}`);
    pen = "L";
  });
  return parts.join(" ");
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The overlay line chart of both runs' per-token entropy, or a line saying there is none. */
export function entropyChart(curves: Curve[], width = 640, height = 180): Element {
  const known = curves.flatMap((c) => c.entropy.filter((v): v is number => v !== null && Number.isFinite(v)));
  if (!known.length) {
    return el("div", "rnb-label rnb-browser-no-entropy",
      "no per-token entropy stored for these runs (scripted models and servers without logprobs give none)");
  }
  const [left, right, top, bottom] = [40, 10, 10, 28];
  const xMax = Math.max(1, ...curves.flatMap((c) => c.positions));
  const yMax = Math.max(0.1, ...known);
  const x = (v: number) => left + (v / xMax) * (width - left - right);
  const y = (v: number) => height - bottom - (v / yMax) * (height - top - bottom);
  const chart = svg("svg", { class: "rnb-browser-entropy", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  chart.appendChild(svg("title", {}, "per-token entropy (nats) of each run's last generation"));
  chart.append(svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), stroke: "#94a3b8" }),
    svg("line", { x1: left, x2: left, y1: top, y2: y(0), stroke: "#94a3b8" }),
    svg("text", { x: left - 4, y: y(yMax) + 4, "text-anchor": "end", class: "rnb-axis" }, yMax.toFixed(2)),
    svg("text", { x: left - 4, y: y(0), "text-anchor": "end", class: "rnb-axis" }, "0"),
    svg("text", { x: width - right, y: height - 4, "text-anchor": "end", class: "rnb-axis" }, `token ${Math.round(xMax)}`),
    svg("text", { x: left, y: height - 4, class: "rnb-axis" }, "entropy (nats) by token position"));
  curves.forEach((curve, i) => {
    const d = linePath(curve.positions, curve.entropy, x, y);
    if (!d) return;
    const path = svg("path", { d, fill: "none", stroke: SIDE_COLOURS[i], "stroke-width": 1.5, "data-side": "AB"[i] });
    path.setAttribute("data-points", String(curve.positions.length));
    chart.appendChild(path);
  });
  return chart;
}

export function drawSide(run: CompareRun, i: number): HTMLElement {
  const side = el("div", "rnb-browser-side");
  side.dataset.side = "AB"[i];
  side.style.borderColor = SIDE_COLOURS[i];
  side.appendChild(el("div", "rnb-label", `${"AB"[i]} · ${run.kind} · ${run.model} · ${run.status} · ${run.run_id}`));
  if (run.task) side.append(el("div", "rnb-label", "task"), el("pre", "rnb-text rnb-browser-task", run.task));
  side.append(el("div", "rnb-label", "answer"), el("pre", "rnb-text rnb-browser-side-answer", run.final_answer ?? ""));
  if (run.outcome) {
    const o = run.outcome;
    const mark = el("div", `rnb-verdict ${o.correct ? "ok" : "bad"} rnb-browser-outcome`,
      `item ${String(o.item_id)}: predicted ${String(o.predicted ?? "—")}, gold ${String(o.gold ?? "—")}`);
    side.appendChild(mark);
  }
  return side;
}

export function drawDiff(data: Comparison): HTMLElement {
  const box = el("div", "rnb-browser-diff");
  box.appendChild(el("div", "rnb-label", `word diff A → B (${Math.round(data.similarity * 100)}% alike)`));
  const text = el("pre", "rnb-text");
  for (const op of data.diff) {
    if (op.op === "equal") { text.appendChild(document.createTextNode(op.b)); continue; }
    if (op.a) text.appendChild(el("span", "rnb-del", op.a));
    if (op.b) text.appendChild(el("span", "rnb-ins", op.b));
  }
  box.appendChild(text);
  return box;
}

export function drawItems(data: Comparison): HTMLElement {
  const box = el("div", "rnb-browser-items");
  const s = data.summary;
  box.appendChild(el("div", "rnb-label", `items ${data.items.length} of ${data.items_total}` + (s ?
    ` · A ${s.a.correct}/${s.a.items} correct · B ${s.b.correct}/${s.b.items} correct · ${s.differs} differ` : "")));
  const items = el("table", "rnb-browser-table");
  const top = el("tr");
  for (const label of ["item", "gold", "A predicted", "A", "B predicted", "B"]) top.appendChild(el("th", undefined, label));
  items.appendChild(el("thead")).appendChild(top);
  const rows = el("tbody");
  const mark = (v: boolean | null) => (v === null ? "—" : v ? "✓" : "✗");
  for (const r of data.items) {
    const tr = el("tr", r.differs ? "rnb-browser-item differs" : "rnb-browser-item");
    for (const v of [r.item_id, r.gold ?? "", r.a_predicted ?? "", mark(r.a_correct), r.b_predicted ?? "", mark(r.b_correct)]) {
      tr.appendChild(el("td", undefined, String(v)));
    }
    rows.appendChild(tr);
  }
  items.appendChild(rows);
  box.appendChild(items);
  return box;
}

/** The whole comparison as nodes for the browser's detail pane; `onClose` ends the comparison. */
export function comparisonView(data: Comparison, onClose: () => void): HTMLElement[] {
  const line = el("div", "rnb-head");
  line.appendChild(el("span", "rnb-label", "two runs side by side"));
  const close = el("button", "rnb-browser-uncompare", "clear comparison");
  close.addEventListener("click", onClose);
  line.appendChild(close);
  const sides = el("div", "rnb-browser-compare");
  data.runs.forEach((run, i) => sides.appendChild(drawSide(run, i)));
  const chart = el("div", "rnb-browser-chart");
  chart.appendChild(entropyChart(data.entropy));
  const legend = el("div", "rnb-label rnb-browser-legend");
  data.entropy.forEach((c, i) => {
    const key = el("span", undefined, `${"AB"[i]}: ${c.tokens} tokens, mean entropy ${c.mean === null ? "—" : c.mean.toFixed(3)}  `);
    key.style.color = SIDE_COLOURS[i];
    legend.appendChild(key);
  });
  chart.appendChild(legend);
  const nodes = [line, sides, drawDiff(data), chart];
  if (data.items.length) nodes.push(drawItems(data));
  return nodes;
}

/** Replace `detail`'s content with the comparison. */
export function showComparison(detail: HTMLElement, data: Comparison, onClose: () => void): void {
  clear(detail);
  detail.append(...comparisonView(data, onClose));
}
