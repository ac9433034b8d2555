import { describe, expect, it } from "vitest";
import browser, { BrowserState, cellText, countText, createBrowser, Page, Requests, RunRow } from "../src/browser";
import { Comparison, entropyChart, linePath } from "../src/browser_compare";
import { FakeModel } from "./fake";

/** FakeModel plus the kernel's side of custom messages: `reply()` delivers a message to the view. */
class KernelModel extends FakeModel<Record<string, unknown>> {
  listeners: ((content: unknown) => void)[] = [];
  on(event: string, cb: () => void): void {
    if (event === "msg:custom") this.listeners.push(cb as unknown as (content: unknown) => void);
    else super.on(event, cb);
  }
  reply(content: unknown): void { this.listeners.forEach((l) => l(content)); }
  last(): Record<string, unknown> { return this.sent[this.sent.length - 1] as Record<string, unknown>; }
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

function row(over: Partial<RunRow>): RunRow {
  return { run_id: "r1", name: null, kind: "reflect", method: "", model: "smollm2-135m", status: "completed",
    started_at: "2026-01-02T03:04:05.123456+00:00", seconds: 1.5, tokens: 42, answer: "Paris", error: null,
    tags: [], ...over };
}

function state(rows: RunRow[], over: Partial<BrowserState> = {}): BrowserState {
  return { store_path: "/t.duckdb", page_size: 2, first_page: { rows, total: rows.length, offset: 0, limit: 2 },
    facets: { runs: rows.length, kinds: ["debate", "reflect"], models: ["smollm2-135m"], statuses: ["completed"],
      tags: ["good"] }, empty_message: "", selected: null, compared: [], ...over };
}

function mount(s: BrowserState) {
  const model = new KernelModel(s as unknown as Record<string, unknown>);
  const host = document.createElement("div");
  const api = createBrowser(model as never, host, { debounceMs: 0 });
  return { model, host, api };
}

const texts = (host: HTMLElement, sel: string) => [...host.querySelectorAll(sel)].map((n) => n.textContent);

describe("run browser", () => {
  it("draws the first page from the synced state without asking the kernel", () => {
    const { model, host } = mount(state([row({}), row({ run_id: "r2", kind: "debate", method: "du", tags: ["a", "b"] })]));
    expect(model.sent).toEqual([]);
    expect(texts(host, ".rnb-browser-row td.rnb-browser-kind")).toEqual(["reflect", "debate"]);
    expect(texts(host, ".rnb-browser-tags")).toEqual(["", "a, b"]);
    expect(host.querySelector(".rnb-browser-count")?.textContent).toBe("1–2 of 2 runs");
    expect(host.dataset.state).toBe("ready");
    expect(texts(host, "select[data-field=kind] option")).toEqual(["any kind", "debate", "reflect"]);
  });

  it("formats cells and counts", () => {
    expect(cellText(row({}), "started_at")).toBe("2026-01-02 03:04:05");
    expect(cellText(row({}), "seconds")).toBe("1.50 s");
    expect(cellText(row({ tokens: null }), "tokens")).toBe("");
    const page: Page = { rows: [row({})], total: 12345, offset: 50, limit: 50 };
    expect(countText(page)).toBe("51–51 of 12,345 runs");
  });

  it("asks for a page with an id and draws the reply with that id", async () => {
    const { model, host } = mount(state([row({})]));
    (host.querySelector("select[data-field=kind]") as HTMLSelectElement).value = "debate";
    host.querySelector("select[data-field=kind]")!.dispatchEvent(new Event("change"));
    const sent = model.last();
    expect(sent).toMatchObject({ type: "page", query: { kind: "debate", offset: 0, limit: 2, sort: "started" } });
    expect(host.dataset.state).toBe("loading");
    model.reply({ type: "reply", id: sent.id, result: { rows: [row({ run_id: "d", kind: "debate" })], total: 1, offset: 0, limit: 2 } });
    await flush();
    expect(texts(host, ".rnb-browser-kind")).toEqual(["debate"]);
    expect(host.dataset.state).toBe("ready");
  });

  it("keeps only the answer to the latest request when replies arrive out of order", async () => {
    const { model, host } = mount(state([row({})]));
    const search = host.querySelector(".rnb-browser-search") as HTMLInputElement;
    search.value = "pa"; search.dispatchEvent(new Event("input"));
    const first = model.last();
    search.value = "paris"; search.dispatchEvent(new Event("input"));
    const second = model.last();
    expect(second).toMatchObject({ query: { search: "paris" } });
    model.reply({ type: "reply", id: second.id, result: { rows: [row({ run_id: "new", answer: "new" })], total: 1, offset: 0, limit: 2 } });
    model.reply({ type: "reply", id: first.id, result: { rows: [row({ run_id: "old", answer: "old" })], total: 1, offset: 0, limit: 2 } });
    await flush();
    expect(texts(host, ".rnb-browser-answer")).toEqual(["new"]);
  });

  it("shows the kernel's error and keeps the rows it had", async () => {
    const { model, host } = mount(state([row({})]));
    (host.querySelector(".rnb-browser-next") as HTMLButtonElement).disabled = false;
    host.querySelector<HTMLButtonElement>(".rnb-browser-next")!.click();
    model.reply({ type: "reply", id: model.last().id, error: "`offset` must be an integer from 0 up, got -1" });
    await flush();
    expect(host.querySelector(".rnb-browser-error")?.textContent).toBe("`offset` must be an integer from 0 up, got -1");
    expect(texts(host, ".rnb-browser-answer")).toEqual(["Paris"]);
  });

  it("sorts by a clicked column, descending first, and toggles on a second click", () => {
    const { model, host } = mount(state([row({})]));
    const header = () => host.querySelector("th[data-sort=duration]") as HTMLElement;
    header().click();
    expect(model.last()).toMatchObject({ type: "page", query: { sort: "duration", descending: true } });
    header().click();
    expect(model.last()).toMatchObject({ query: { sort: "duration", descending: false } });
    expect(header().textContent).toBe("duration ▲");
    expect(host.querySelector("th:not([data-sort]):not(.rnb-browser-pick-head)")?.textContent).toBe("answer");
  });

  it("pages forward and back by the page size", async () => {
    const { model, host } = mount(state([row({}), row({ run_id: "r2" })], { first_page: { rows: [row({}), row({ run_id: "r2" })], total: 5, offset: 0, limit: 2 } }));
    expect((host.querySelector(".rnb-browser-prev") as HTMLButtonElement).disabled).toBe(true);
    host.querySelector<HTMLButtonElement>(".rnb-browser-next")!.click();
    expect(model.last()).toMatchObject({ query: { offset: 2 } });
    model.reply({ type: "reply", id: model.last().id, result: { rows: [row({ run_id: "r3" })], total: 5, offset: 2, limit: 2 } });
    await flush();
    expect(host.querySelector(".rnb-browser-count")?.textContent).toBe("3–3 of 5 runs");
    host.querySelector<HTMLButtonElement>(".rnb-browser-prev")!.click();
    expect(model.last()).toMatchObject({ query: { offset: 0 } });
  });

  it("opens a clicked run, then tags it and shows the stored tags", async () => {
    const { model, host } = mount(state([row({})]));
    host.querySelector<HTMLElement>(".rnb-browser-row")!.click();
    expect(model.last()).toMatchObject({ type: "open", run_id: "r1" });
    expect(host.querySelector(".rnb-browser-row")?.classList.contains("selected")).toBe(true);
    model.reply({ type: "reply", id: model.last().id, result: { run_id: "r1", views: ["HTML", "TreeView"] } });
    await flush();
    (host.querySelector(".rnb-browser-tag-input") as HTMLInputElement).value = " good ";
    host.querySelector<HTMLButtonElement>(".rnb-browser-add-tag")!.click();
    expect(model.last()).toMatchObject({ type: "tag", run_id: "r1", tag: "good", remove: false });
    model.reply({ type: "reply", id: model.last().id, result: { run_id: "r1", tags: ["good"] } });
    await flush();
    expect(texts(host, ".rnb-browser-tags")).toEqual(["good"]);
    expect(host.querySelector(".rnb-browser-tag")?.firstChild?.textContent).toBe("good");
    host.querySelector<HTMLButtonElement>(".rnb-browser-untag")!.click();
    expect(model.last()).toMatchObject({ type: "tag", tag: "good", remove: true });
  });

  it("shows why a run could not be opened", async () => {
    const { model, host } = mount(state([row({})]));
    host.querySelector<HTMLElement>(".rnb-browser-row")!.click();
    model.reply({ type: "reply", id: model.last().id, error: "no run 'r1' in the trace store /t.duckdb (it may have been deleted)" });
    await flush();
    expect(host.querySelector(".rnb-browser-detail .rnb-browser-error")?.textContent).toContain("may have been deleted");
  });

  it("shows the empty state the kernel wrote", () => {
    const { host } = mount(state([], { empty_message: "No runs in the trace store /t.duckdb yet. Make one" }));
    expect(host.querySelector(".rnb-browser-empty")?.textContent).toBe("No runs in the trace store /t.duckdb yet. Make one");
    expect(host.querySelector(".rnb-browser-count")?.textContent).toBe("0 runs");
  });

  it("ignores messages that are not replies to a pending request", async () => {
    const model = new KernelModel({});
    const requests = new Requests(model as never);
    let done: unknown = "pending";
    void requests.send("facets").then((v) => { done = v; });
    model.reply({ type: "other", id: 1 });
    model.reply({ type: "reply", id: 99, result: "wrong" });
    await flush();
    expect(done).toBe("pending");
    model.reply({ type: "reply", id: 1, result: "right" });
    await flush();
    expect(done).toBe("right");
  });

  it("shows hostile run text as text: no element, attribute or link is created from it", () => {
    const hostile = "<img src=x onerror=alert(1)><script>alert(1)</script>";
    const host = document.createElement("div");
    const model = new KernelModel(state([row({ run_id: hostile, kind: hostile, model: hostile, answer: hostile,
      tags: [hostile], error: hostile, method: hostile })]) as unknown as Record<string, unknown>);
    browser.render({ model: model as never, el: host });
    expect(host.querySelectorAll("img, script, a, [onerror], [href], [src]").length).toBe(0);
    expect(host.textContent).toContain(hostile);
  });

  it("compares the two runs ticked last: both answers, the word diff, the entropy chart and the items", async () => {
    const { model, host } = mount(state([row({}), row({ run_id: "r2" }), row({ run_id: "r3" })]));
    const tick = (i: number) => host.querySelectorAll<HTMLInputElement>(".rnb-browser-pick")[i].click();
    tick(0);
    expect(model.sent).toEqual([]);
    expect(host.querySelector(".rnb-browser-detail")?.textContent).toContain("tick one more run");
    tick(1);
    const firstPair = model.last();
    expect(firstPair).toMatchObject({ type: "compare", run_ids: ["r1", "r2"] });
    tick(2); // a third tick drops the oldest
    expect(model.last()).toMatchObject({ type: "compare", run_ids: ["r2", "r3"] });
    model.reply({ type: "reply", id: firstPair.id, result: { ...COMPARISON, runs: [...COMPARISON.runs].reverse() } });
    await flush(); // the reply to the older pair is dropped
    expect(host.dataset.compared).toBeUndefined();
    expect(model.sent.filter((m) => (m as { type: string }).type === "open")).toEqual([]); // ticks do not open
    expect([...host.querySelectorAll(".rnb-browser-row.picked")].map((r) => (r as HTMLElement).dataset.runId)).toEqual(["r2", "r3"]);
    model.reply({ type: "reply", id: model.last().id, result: COMPARISON });
    await flush();
    expect(texts(host, ".rnb-browser-side-answer")).toEqual(["the cat sat", "the dog sat"]);
    expect(texts(host, ".rnb-browser-diff .rnb-del")).toEqual([" cat"]);
    expect(texts(host, ".rnb-browser-diff .rnb-ins")).toEqual([" dog"]);
    expect(host.querySelector(".rnb-browser-diff pre")?.textContent).toBe("the cat dog sat");
    const paths = [...host.querySelectorAll(".rnb-browser-entropy path")];
    expect(paths.map((p) => [p.getAttribute("data-side"), p.getAttribute("data-points")])).toEqual([["A", "3"], ["B", "3"]]);
    expect(texts(host, ".rnb-browser-item td")).toEqual(["q1", "2", "2", "✓", "3", "✗"]);
    expect(host.querySelector(".rnb-browser-outcome")?.textContent).toBe("item q1: predicted 2, gold 2");
    expect(host.dataset.compared).toBe("r2,r3");
    expect(model.state.compared).toEqual(["r2", "r3"]); // the page sets the synced pair; the kernel does not echo it
    host.querySelector<HTMLButtonElement>(".rnb-browser-uncompare")!.click();
    expect(host.querySelectorAll(".rnb-browser-row.picked").length).toBe(0);
    expect(host.dataset.compared).toBeUndefined();
    expect(model.state.compared).toEqual([]);
  });

  it("shows the kernel's error when a compared run was deleted, and compares a pair the kernel chose", async () => {
    const { model, host } = mount(state([row({}), row({ run_id: "r2" })]));
    model.set("compared", ["r1", "r2"]);
    expect(model.last()).toMatchObject({ type: "compare", run_ids: ["r1", "r2"] });
    model.reply({ type: "reply", id: model.last().id, error: "no run 'r2' in the trace store /t.duckdb (it may have been deleted)" });
    await flush();
    expect(host.querySelector(".rnb-browser-detail .rnb-browser-error")?.textContent).toContain("may have been deleted");
    const sent = model.sent.length;
    model.set("compared", ["r1", "r2"]); // the pair it shows already: no second request
    expect(model.sent.length).toBe(sent);
  });

  it("draws entropy lines broken where a token has none, and says when neither run has any", () => {
    expect(linePath([0, 1, 2, 3], [1, null, 2, 3], (x) => x * 10, (y) => 100 - y)).toBe("M0.0,99.0 M20.0,98.0 L30.0,97.0");
    const none = entropyChart([{ positions: [0], entropy: [null], tokens: 1, mean: null },
      { positions: [], entropy: [], tokens: 0, mean: null }]);
    expect(none.textContent).toContain("no per-token entropy stored for these runs");
  });

  it("shows hostile text in a comparison as text", async () => {
    const hostile = "<img src=x onerror=alert(1)><script>alert(1)</script>";
    const { model, host } = mount(state([row({}), row({ run_id: "r2" })]));
    model.set("compared", ["r1", "r2"]);
    const runs = COMPARISON.runs.map((r) => ({ ...r, run_id: hostile, task: hostile, final_answer: hostile, kind: hostile,
      outcome: { item_id: hostile, predicted: hostile, gold: hostile, correct: false } }));
    model.reply({ type: "reply", id: model.last().id, result: { ...COMPARISON, runs,
      diff: [{ op: "replace", a: hostile, b: hostile }], items: [{ ...COMPARISON.items[0], item_id: hostile, gold: hostile }] } });
    await flush();
    expect(host.querySelectorAll(".rnb-browser-side").length).toBe(2);
    expect(host.querySelectorAll("img, script, a, [onerror], [href], [src]").length).toBe(0);
    expect(host.querySelector(".rnb-browser-detail")?.textContent).toContain(hostile);
  });
});

const COMPARISON: Comparison = {
  runs: [
    { run_id: "r2", kind: "eval:baseline", model: "m", status: "completed", task: "1 + 1?", final_answer: "the cat sat",
      error: null, seconds: 1, completion_tokens: 3, tags: [], outcome: { item_id: "q1", predicted: "2", gold: "2", correct: true } },
    { run_id: "r3", kind: "eval:reflect", model: "m", status: "completed", task: "1 + 1?", final_answer: "the dog sat",
      error: null, seconds: 1, completion_tokens: 3, tags: [], outcome: null },
  ],
  entropy: [{ positions: [0, 1, 2], entropy: [0.5, 1, 0.25], tokens: 3, mean: 0.58 },
    { positions: [0, 1, 2], entropy: [0.1, 0.2, 0.3], tokens: 3, mean: 0.2 }],
  diff: [{ op: "equal", a: "the", b: "the" }, { op: "replace", a: " cat", b: " dog" }, { op: "equal", a: " sat", b: " sat" }],
  similarity: 0.67,
  items: [{ item_id: "q1", gold: "2", differs: true, a_predicted: "2", a_correct: true, a_run_id: "r2", b_predicted: "3",
    b_correct: false, b_run_id: "r3" }],
  items_total: 1,
  summary: { a: { items: 1, correct: 1 }, b: { items: 1, correct: 0 }, differs: 1 },
};
