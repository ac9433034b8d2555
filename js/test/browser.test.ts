import { describe, expect, it } from "vitest";
import browser, { BrowserState, cellText, countText, createBrowser, Page, Requests, RunRow } from "../src/browser";
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
      tags: ["good"] }, empty_message: "", selected: null, ...over };
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
    expect(host.querySelector("th:not([data-sort])")?.textContent).toBe("answer");
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
});
