// Run browser: a table of stored runs, a page at a time; filters and sort are evaluated by DuckDB in
// the kernel. Requests carry an id and the kernel replies {type: "reply", id, result | error}.
// Ticking two runs compares them (browser_compare.ts draws the pair). Mirrors reflectnb/widgets/browser.py.
// Run text is untrusted: textContent only. data-first-render-ms, data-drawn-at and data-requested-at
// (performance.now() values) let the benchmark time renders and round-trips in the page.
import { Comparison, showComparison } from "./browser_compare";
import { addStyle, clear, el, WidgetModel } from "./dom";

/** One row of the table, as `reflectnb.store.browse.page_runs` returns it. */
export interface RunRow {
  run_id: string; name: string | null; kind: string; method: string; model: string; status: string;
  started_at: string | null; seconds: number | null; tokens: number | null; answer: string;
  error: string | null; tags: string[];
}

/** One page of runs. */
export interface Page { rows: RunRow[]; total: number; offset: number; limit: number }

/** The values the filters offer. */
export interface Facets { runs: number; kinds: string[]; models: string[]; statuses: string[]; tags: string[] }

/** The synced state of RunBrowser. */
export interface BrowserState {
  store_path: string;
  page_size: number;
  first_page: Page;
  facets: Facets;
  empty_message: string;
  selected: string | null;
  compared: string[];
}

/** What a page request asks for (`RunQuery` in Python). */
export interface Query {
  kind?: string; model?: string; status?: string; tag?: string; since?: string; until?: string;
  search?: string; sort: string; descending: boolean; offset: number; limit: number;
}

interface Reply { type: "reply"; id: number; result?: unknown; error?: string }

export const COLUMNS: [keyof RunRow, string, string | null][] = [
  ["kind", "kind", "kind"], ["method", "method", "method"], ["model", "model", "model"],
  ["status", "status", "status"], ["started_at", "started", "started"], ["seconds", "duration", "duration"],
  ["tokens", "tokens", "tokens"], ["answer", "answer", null], ["tags", "tags", null],
];
const FILTERS: ["kind" | "model" | "status" | "tag", keyof Facets][] = [
  ["kind", "kinds"], ["model", "models"], ["status", "statuses"], ["tag", "tags"]];

/** Sends requests to the kernel and resolves each with the reply carrying its id. */
export class Requests {
  private next = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private model: WidgetModel<BrowserState>) {
    const listener = (content: Reply) => this.receive(content);
    model.on("msg:custom", listener as unknown as () => void);
  }

  send(type: string, payload: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.model.send({ type, id, ...payload });
    });
  }

  receive(content: Reply): void {
    if (!content || content.type !== "reply") return;
    const waiting = this.pending.get(content.id);
    if (!waiting) return;
    this.pending.delete(content.id);
    if (content.error !== undefined) waiting.reject(new Error(content.error));
    else waiting.resolve(content.result);
  }
}

/** A cell's text: durations in seconds, times without the zone and fraction, tags joined. */
export function cellText(row: RunRow, key: keyof RunRow): string {
  const value = row[key];
  if (value === null || value === undefined) return "";
  if (key === "seconds") return `${(value as number).toFixed(2)} s`;
  if (key === "started_at") return String(value).replace("T", " ").slice(0, 19);
  if (key === "tags") return (value as string[]).join(", ");
  return String(value);
}

/** "1–50 of 1,234 runs" */
export function countText(page: Page): string {
  if (!page.total) return "0 runs";
  const last = Math.min(page.offset + page.rows.length, page.total);
  return `${page.offset + 1}–${last} of ${page.total.toLocaleString("en-US")} runs`;
}

export interface BrowserOptions { debounceMs?: number }

/** Build the browser inside `root`; returns a cleanup function. */
export function createBrowser(model: WidgetModel<BrowserState>, root: HTMLElement, options: BrowserOptions = {}) {
  const born = performance.now();
  const requests = new Requests(model);
  const debounceMs = options.debounceMs ?? 250;
  const query: Query = { sort: "started", descending: true, offset: 0, limit: model.get("page_size") || 50 };
  let page: Page = model.get("first_page") || { rows: [], total: 0, offset: 0, limit: query.limit };
  let latest = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let selected: string | null = model.get("selected");
  let picks: string[] = [...(model.get("compared") || [])];

  clear(root);
  addStyle(root);
  const style = document.createElement("style");
  style.textContent = STYLE;
  root.appendChild(style);
  const bar = el("div", "rnb-head rnb-browser-bar");
  const search = el("input", "rnb-browser-search");
  search.type = "search";
  search.placeholder = "search task, answer, run id";
  bar.appendChild(search);
  const selects: Record<string, HTMLSelectElement> = {};
  for (const [field] of FILTERS) {
    selects[field] = el("select", "rnb-browser-filter");
    selects[field].dataset.field = field;
    bar.appendChild(selects[field]);
  }
  const since = el("input", "rnb-browser-since"); since.type = "date"; since.title = "started on or after";
  const until = el("input", "rnb-browser-until"); until.type = "date"; until.title = "started on or before";
  const refresh = el("button", "rnb-browser-refresh", "Refresh");
  bar.append(since, until, refresh);
  const count = el("div", "rnb-label rnb-browser-count");
  const error = el("div", "rnb-browser-error");
  const empty = el("div", "rnb-browser-empty");
  const table = el("table", "rnb-browser-table");
  const head = el("tr");
  const body = el("tbody");
  table.append(el("thead"), body);
  table.tHead!.appendChild(head);
  const pager = el("div", "rnb-head rnb-browser-pager");
  const prev = el("button", "rnb-browser-prev", "‹ previous");
  const next = el("button", "rnb-browser-next", "next ›");
  pager.append(prev, next);
  const detail = el("div", "rnb-browser-detail");
  root.append(bar, count, error, empty, table, pager, detail);

  function fillFilters(): void {
    const facets = model.get("facets") || { runs: 0, kinds: [], models: [], statuses: [], tags: [] };
    for (const [field, key] of FILTERS) {
      const box = selects[field];
      const keep = box.value;
      clear(box);
      const all = el("option", undefined, `any ${field}`);
      all.value = "";
      box.appendChild(all);
      for (const value of facets[key] as string[]) {
        const option = el("option", undefined, value);
        option.value = value;
        box.appendChild(option);
      }
      box.value = (facets[key] as string[]).includes(keep) ? keep : "";
    }
    empty.textContent = model.get("empty_message") || "";
  }

  function drawHead(): void {
    clear(head);
    head.appendChild(el("th", "rnb-browser-pick-head", "⇄"));
    head.lastElementChild!.setAttribute("title", "tick two runs to compare them");
    for (const [, label, sort] of COLUMNS) {
      const th = el("th", sort ? "rnb-browser-sort" : undefined, label);
      if (sort) {
        th.dataset.sort = sort;
        if (query.sort === sort) th.textContent = `${label} ${query.descending ? "▼" : "▲"}`;
        th.addEventListener("click", () => {
          query.descending = query.sort === sort ? !query.descending : ["started", "duration", "tokens"].includes(sort);
          query.sort = sort;
          query.offset = 0;
          drawHead();
          void load();
        });
      }
      head.appendChild(th);
    }
  }

  function drawRows(): void {
    clear(body);
    for (const row of page.rows) {
      const tr = el("tr", `rnb-browser-row${row.run_id === selected ? " selected" : ""} ${row.status}`);
      tr.dataset.runId = row.run_id;
      const pick = el("input", "rnb-browser-pick");
      pick.type = "checkbox";
      pick.checked = picks.includes(row.run_id);
      pick.title = "compare this run with another";
      pick.addEventListener("click", (e) => { e.stopPropagation(); togglePick(row.run_id); });
      tr.appendChild(el("td", "rnb-browser-pick-cell")).appendChild(pick);
      if (picks.includes(row.run_id)) tr.classList.add("picked");
      for (const [key] of COLUMNS) tr.appendChild(el("td", `rnb-browser-${String(key)}`, cellText(row, key)));
      tr.title = row.error ? `${row.run_id}: ${row.error}` : row.run_id;
      tr.addEventListener("click", (e) => (e.ctrlKey || e.metaKey ? togglePick(row.run_id) : void open(row.run_id)));
      body.appendChild(tr);
    }
    count.textContent = countText(page);
    prev.disabled = page.offset <= 0;
    next.disabled = page.offset + page.rows.length >= page.total;
    root.dataset.total = String(page.total);
    root.dataset.rows = String(page.rows.length);
    root.dataset.drawnAt = String(performance.now());
  }

  async function load(): Promise<void> {
    const mine = ++latest;
    root.dataset.state = "loading";
    root.dataset.requestedAt = String(performance.now());
    try {
      const result = (await requests.send("page", { query: { ...query } })) as Page;
      if (mine !== latest) return; // a newer request was sent meanwhile: its answer wins
      page = result;
      error.textContent = "";
      drawRows();
    } catch (e) {
      if (mine === latest) error.textContent = (e as Error).message;
    } finally {
      if (mine === latest) root.dataset.state = "ready";
    }
  }

  /** The page owns `compared` for its own picks (the kernel does not echo them back, so an old reply
   *  cannot undo a newer tick); the kernel sets it only for browser.compare() in a cell. */
  function syncCompared(pair: string[]): void {
    if (!model.set || (model.get("compared") || []).join() === pair.join()) return;
    model.set("compared", pair);
    model.save_changes?.();
  }

  /** Tick or untick a run for comparison; the two latest ticked are compared. */
  function togglePick(runId: string): void {
    picks = picks.includes(runId) ? picks.filter((r) => r !== runId) : [...picks, runId].slice(-2);
    drawRows();
    if (picks.length === 2) void compare();
    else {
      delete root.dataset.compared;
      syncCompared([]);
      clear(detail);
      if (picks.length === 1) detail.appendChild(el("div", "rnb-label", "tick one more run to compare it with this one"));
    }
  }

  async function compare(): Promise<void> {
    const pair = [...picks];
    syncCompared(pair);
    clear(detail);
    detail.appendChild(el("div", "rnb-label", `comparing ${pair.join(" and ")}…`));
    try {
      const data = (await requests.send("compare", { run_ids: pair })) as Comparison;
      if (picks.join() !== pair.join()) return; // the picks changed meanwhile
      drawComparison(data);
    } catch (e) {
      if (picks.join() !== pair.join()) return;
      clear(detail);
      detail.appendChild(el("div", "rnb-browser-error", (e as Error).message));
    }
  }

  function drawComparison(data: Comparison): void {
    showComparison(detail, data, () => {
      picks = []; drawRows(); delete root.dataset.compared; syncCompared([]); clear(detail);
    });
    root.dataset.compared = data.runs.map((r) => r.run_id).join(",");
  }

  async function open(runId: string): Promise<void> {
    picks = [];
    delete root.dataset.compared;
    syncCompared([]);
    selected = runId;
    drawRows();
    clear(detail);
    detail.appendChild(el("div", "rnb-label", `opening ${runId}…`));
    try {
      await requests.send("open", { run_id: runId });
      drawDetail(runId, page.rows.find((r) => r.run_id === runId)?.tags ?? []);
    } catch (e) {
      clear(detail);
      detail.appendChild(el("div", "rnb-browser-error", (e as Error).message));
    }
  }

  function drawDetail(runId: string, tags: string[]): void {
    clear(detail);
    const line = el("div", "rnb-head");
    line.appendChild(el("span", "rnb-label", `run ${runId}`));
    for (const tag of tags) {
      const chip = el("span", "rnb-browser-tag", tag);
      const remove = el("button", "rnb-browser-untag", "×");
      remove.title = `remove tag ${tag}`;
      remove.addEventListener("click", () => void setTag(runId, tag, true));
      chip.appendChild(remove);
      line.appendChild(chip);
    }
    const input = el("input", "rnb-browser-tag-input");
    input.placeholder = "tag";
    const add = el("button", "rnb-browser-add-tag", "add tag");
    add.addEventListener("click", () => { if (input.value.trim()) void setTag(runId, input.value.trim(), false); });
    line.append(input, add);
    const note = el("textarea", "rnb-browser-note");
    note.placeholder = "note";
    note.rows = 2;
    const save = el("button", "rnb-browser-save-note", "save note");
    const message = el("span", "rnb-label rnb-browser-message");
    save.addEventListener("click", async () => {
      if (!note.value.trim()) return;
      try {
        const result = (await requests.send("note", { run_id: runId, note: note.value })) as { notes: string[] };
        note.value = "";
        message.textContent = `${result.notes.length} note(s) saved`;
      } catch (e) { message.textContent = (e as Error).message; }
    });
    detail.append(line, note, save, message);
  }

  async function setTag(runId: string, tag: string, remove: boolean): Promise<void> {
    try {
      const result = (await requests.send("tag", { run_id: runId, tag, remove })) as { tags: string[] };
      page = { ...page, rows: page.rows.map((r) => (r.run_id === runId ? { ...r, tags: result.tags } : r)) };
      drawRows();
      drawDetail(runId, result.tags);
    } catch (e) { error.textContent = (e as Error).message; }
  }

  function filtersChanged(): void {
    for (const [field] of FILTERS) query[field] = selects[field].value || undefined;
    query.since = since.value || undefined;
    query.until = until.value || undefined;
    query.search = search.value.trim() || undefined;
    query.offset = 0;
    void load();
  }

  search.addEventListener("input", () => {
    if (timer !== undefined) clearTimeout(timer);
    if (debounceMs <= 0) filtersChanged();
    else timer = setTimeout(filtersChanged, debounceMs);
  });
  for (const box of [...Object.values(selects), since, until]) box.addEventListener("change", filtersChanged);
  prev.addEventListener("click", () => { query.offset = Math.max(0, query.offset - query.limit); void load(); });
  next.addEventListener("click", () => { query.offset += query.limit; void load(); });
  refresh.addEventListener("click", async () => {
    try { await requests.send("facets"); } catch (e) { error.textContent = (e as Error).message; }
    void load();
  });
  const onFacets = () => fillFilters();
  model.on("change:facets", onFacets);
  model.on("change:empty_message", onFacets);
  const onCompared = () => { // the kernel compared a pair (browser.compare in a cell): show it here too
    const pair = model.get("compared") || [];
    if (pair.length === 2 && pair.join() !== picks.join()) { picks = [...pair]; drawRows(); void compare(); }
  };
  model.on("change:compared", onCompared);

  fillFilters();
  drawHead();
  drawRows();
  if (picks.length === 2) void compare();
  root.dataset.state = "ready";
  root.dataset.firstRenderMs = (performance.now() - born).toFixed(1);
  return {
    load, open, query, page: () => page, compare, togglePick,
    cleanup: () => {
      model.off?.("change:facets", onFacets); model.off?.("change:empty_message", onFacets);
      model.off?.("change:compared", onCompared);
    },
  };
}

const STYLE = `
.rnb-browser-bar { flex-wrap: wrap; }
.rnb-browser-table { border-collapse: collapse; width: 100%; font-size: 12px; }
.rnb-browser-table th, .rnb-browser-table td { border-bottom: 1px solid #e2e8f0; padding: 2px 6px; text-align: left;
  max-width: 28em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.rnb-browser-sort { cursor: pointer; user-select: none; }
.rnb-browser-row { cursor: pointer; } .rnb-browser-row:hover { background: #f1f5f9; }
.rnb-browser-row.selected { background: #dbeafe; } .rnb-browser-row.failed td.rnb-browser-status { color: #dc2626; }
.rnb-browser-error { color: #dc2626; white-space: pre-wrap; } .rnb-browser-empty { color: #475569; margin: 6px 0; }
.rnb-browser-tag { background: #ede9fe; border-radius: 8px; padding: 0 6px; }
.rnb-browser-untag { border: none; background: none; cursor: pointer; }
.rnb-browser-note { width: 100%; box-sizing: border-box; }
.rnb-browser-row.picked { outline: 1px solid #93c5fd; } .rnb-browser-pick-cell { width: 1.5em; }
.rnb-browser-compare { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin: 6px 0; }
.rnb-browser-side { border-top: 3px solid; padding: 4px; min-width: 0; } .rnb-browser-side pre { overflow-x: auto; }
.rnb-browser-item.differs { background: #fef9c3; } .rnb-browser-entropy .rnb-axis { font-size: 10px; fill: #64748b; }
`;

export default {
  render({ model, el: host }: { model: WidgetModel<BrowserState>; el: HTMLElement }) {
    const root = el("div", "rnb rnb-browser");
    host.appendChild(root);
    return createBrowser(model, root).cleanup;
  },
};
