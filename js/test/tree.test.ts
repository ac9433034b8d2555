import { describe, expect, it } from "vitest";
import tree, { Layouter, LayoutWorker, NodeColumns, nodesInView, searchNodes, TreeState, valueRange, valueShade,
  visibleNodes } from "../src/tree";
import { heat } from "../src/dom";
import { LayoutInput, layoutTree } from "../src/tree_layout";
import { FakeModel } from "./fake";

/** A complete tree with `branch` children per node, `depth` levels below the root. */
function complete(branch: number, depth: number, text = (i: number) => `node ${i}`): NodeColumns {
  const cols: NodeColumns = { id: [], parent: [], depth: [], value: [], visits: [], status: [], iteration: [], text: [] };
  const add = (parent: number | null, d: number) => {
    const i = cols.id.length;
    cols.id.push(i); cols.parent.push(parent); cols.depth.push(d); cols.value.push(i % 10 / 10);
    cols.visits.push(1); cols.status.push("expanded"); cols.iteration.push(d); cols.text.push(text(i));
    return i;
  };
  let layer = [add(null, 0)];
  for (let d = 1; d <= depth; d++) {
    const next: number[] = [];
    for (const p of layer) for (let b = 0; b < branch; b++) next.push(add(p, d));
    layer = next;
  }
  return cols;
}

function state(nodes: NodeColumns, over: Partial<TreeState> = {}): TreeState {
  return { title: "tree", status: "completed", layout: "tree", nodes, edges: [], best_path: [], selected: null,
    details: {}, stop_requested: false, ...over };
}

async function mount(s: TreeState) {
  const model = new FakeModel(s as unknown as Record<string, unknown>);
  const host = document.createElement("div");
  document.body.appendChild(host);
  const dispose = tree.render({ model: model as never, el: host });
  await new Promise((r) => setTimeout(r, 0)); // the layout promise
  const root = host.querySelector(".rnb-tree") as HTMLElement;
  return { model, host, root, dispose };
}

const all = (n: number) => new Array(n).fill(true);

describe("tree layout", () => {
  it("puts leaves side by side and centres each parent over its children", () => {
    const c = complete(2, 2); // breadth-first ids: 0 -> 1,2 ; 1 -> 3,4 ; 2 -> 5,6
    const l = layoutTree({ parent: c.parent, depth: c.depth, lane: c.depth.map(() => 0), visible: all(7), mode: "tree" });
    expect([l.x[3], l.x[4], l.x[5], l.x[6]]).toEqual([0, 1, 2, 3]);
    expect(l.x[1]).toBe(0.5); expect(l.x[2]).toBe(2.5); expect(l.x[0]).toBe(1.5);
    expect(l.y).toEqual([0, 1, 1, 2, 2, 2, 2]);
    expect([l.width, l.height]).toEqual([4, 3]);
  });

  // How fast is measured by benchmarks/bench_browser.py (first render at 10,000 nodes), not here.
  it("lays out 10,000 nodes, and a 10,000-deep chain, without recursion", () => {
    const c = complete(10, 4); // 11,111 nodes; breadth-first, so the 10,000 leaves are the last ids
    const l = layoutTree({ parent: c.parent, depth: c.depth, lane: c.depth.map(() => 0), visible: all(c.id.length), mode: "tree" });
    expect(l.width).toBe(10_000);
    const leaves = c.id.slice(-10_000);
    expect(leaves.every((id, i) => l.x[id] === i && l.y[id] === 4)).toBe(true); // side by side, in order
    const kids = (p: number) => c.id.filter((i) => c.parent[i] === p);
    expect(l.x[0]).toBe((l.x[kids(0)[0]] + l.x[kids(0)[9]]) / 2); // the root centred over its children
    const n = 10_000;
    const chain = layoutTree({ parent: [...Array(n).keys()].map((i) => (i ? i - 1 : null)), depth: [...Array(n).keys()],
      lane: new Array(n).fill(0), visible: all(n), mode: "tree" });
    expect(chain.height).toBe(n);
    expect(chain.x.every((x) => x === 0)).toBe(true);
  });

  it("layered mode puts each node in its lane and row (a debate: agent x round)", () => {
    const l = layoutTree({ parent: [null, null, 0, 1], depth: [0, 0, 1, 1], lane: [0, 1, 0, 1], visible: all(4), mode: "layered" });
    expect(l.x).toEqual([0, 8, 0, 8]); expect(l.y).toEqual([0, 0, 1, 1]);
  });
});

describe("visibility, search, culling", () => {
  it("hides later iterations and the descendants of collapsed nodes", () => {
    const c = complete(2, 2);
    expect(visibleNodes(c, 1, new Set()).filter(Boolean).length).toBe(3);
    expect(visibleNodes(c, 2, new Set([1]))).toEqual([true, true, true, false, false, true, true]);
  });

  it("search matches visible text case-insensitively", () => {
    const c = complete(2, 2, (i) => (i % 2 ? `Wait ${i}` : `ok ${i}`));
    expect(searchNodes(c, all(7), "WAIT")).toEqual([1, 3, 5]);
    expect(searchNodes(c, visibleNodes(c, 2, new Set([2])), "wait")).toEqual([1, 3]);
    expect(searchNodes(c, all(7), "  ")).toEqual([]);
  });

  it("draws only the nodes inside the viewport", () => {
    const c = complete(10, 3);
    const l = layoutTree({ parent: c.parent, depth: c.depth, lane: c.depth.map(() => 0), visible: all(c.id.length), mode: "tree" });
    const far = nodesInView(l, { k: 0.005, tx: 0, ty: 0 }, 800, 420).length;
    const near = nodesInView(l, { k: 1, tx: 0, ty: 0 }, 800, 420).length;
    expect(far).toBe(c.id.length);
    expect(near).toBeGreaterThan(0);
    expect(near).toBeLessThan(c.id.length / 10);
  });
});

describe("tree view", () => {
  it("renders its controls and reports state on the root element", async () => {
    const { root } = await mount(state(complete(3, 3)));
    for (const sel of [".rnb-tree-canvas", ".rnb-tree-zoom-in", ".rnb-tree-zoom-out", ".rnb-tree-fit",
      ".rnb-tree-stop", ".rnb-tree-search", ".rnb-tree-replay", ".rnb-tree-details"]) {
      expect(root.querySelector(sel), sel).not.toBeNull();
    }
    expect(root.dataset.state).toBe("ready");
    expect(root.dataset.nodes).toBe("40");
    expect(Number(root.dataset.firstRenderMs)).toBeGreaterThanOrEqual(0);
    expect((root.querySelector(".rnb-tree-replay") as HTMLInputElement).max).toBe("3");
  });

  it("zoom buttons change the scale; the replay slider filters by iteration", async () => {
    const { root } = await mount(state(complete(3, 3)));
    const before = Number(root.dataset.zoom);
    (root.querySelector(".rnb-tree-zoom-in") as HTMLButtonElement).click();
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    expect(Number(root.dataset.zoom)).toBeCloseTo(before * 1.5, 3);
    const slider = root.querySelector(".rnb-tree-replay") as HTMLInputElement;
    slider.value = "1";
    slider.dispatchEvent(new Event("input"));
    await new Promise((r) => setTimeout(r, 0));
    expect(root.dataset.nodes).toBe("4");
  });

  it("Enter in the search box selects the next match and sends it to Python", async () => {
    const { model, root } = await mount(state(complete(2, 2, (i) => (i === 5 ? "but wait" : `n${i}`))));
    const box = root.querySelector(".rnb-tree-search") as HTMLInputElement;
    box.value = "wait";
    box.dispatchEvent(new Event("input"));
    box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.get("selected")).toBe(5);
    expect(root.querySelector(".rnb-tree-details")!.textContent).toContain("but wait");
  });

  it("shows the details Python sends for the selected node", async () => {
    const { model, root } = await mount(state(complete(2, 1)));
    model.set("selected", 1);
    model.set("details", { id: 1, prompt: "the prompt text", attributes: { answer: "24" } });
    const text = root.querySelector(".rnb-tree-details")!.textContent!;
    expect(text).toContain("the prompt text");
    expect(text).toContain("24");
  });

  it("the stop button sends a stop message while running and hides after", async () => {
    const { model, root } = await mount(state(complete(2, 1), { status: "running" }));
    const stop = root.querySelector(".rnb-tree-stop") as HTMLButtonElement;
    stop.click();
    expect(model.sent).toEqual([{ type: "stop" }]);
    model.set("status", "interrupted");
    expect(stop.style.display).toBe("none");
  });

  it("model text never becomes markup", async () => {
    const hostile = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>';
    const { model, root } = await mount(state(complete(2, 1, () => hostile), { title: hostile }));
    model.set("selected", 1);
    model.set("details", { id: 1, prompt: hostile, attributes: { a: hostile } });
    expect(root.querySelectorAll("img, script:not(style)").length).toBe(0);
    expect(root.querySelector(".rnb-tree-details")!.textContent).toContain(hostile);
    expect((window as unknown as { __xss?: number }).__xss).toBeUndefined();
  });

  it("grows: new nodes from Python are laid out again", async () => {
    const { model, root } = await mount(state(complete(2, 1), { status: "running" }));
    model.set("nodes", complete(2, 3));
    await new Promise((r) => setTimeout(r, 0));
    expect(root.dataset.nodes).toBe("15");
    expect((root.querySelector(".rnb-tree-replay") as HTMLInputElement).value).toBe("3");
  });
});

describe("colour by value", () => {
  it("spreads a ToT tree's 0.001..60 values over the whole colour scale", () => {
    const values = [null, 0.001, 1, 20, 60, 3];
    const range = valueRange(values);
    expect(range).toEqual({ lo: 0.001, hi: 60 });
    const shades = values.slice(1).map((v) => valueShade(v as number, range));
    expect(shades[0]).toBe(0);
    expect(shades[3]).toBe(1);
    expect(shades[2]).toBeCloseTo((20 - 0.001) / (60 - 0.001), 6);
    expect(new Set(shades.map((t) => heat(t, 145))).size).toBe(5); // five values, five colours
  });

  it("an MCTS tree in [0, 1] is also spread over its own range", () => {
    const range = valueRange([0.2, 0.4, 0.6]);
    expect(valueShade(0.4, range)).toBeCloseTo(0.5, 9);
    expect(valueShade(0.2, range)).toBe(0);
  });

  it("a tree whose values are all equal, or missing, gets the neutral middle", () => {
    expect(valueShade(20, valueRange([20, 20, null]))).toBe(0.5);
    expect(valueRange([null, NaN, Infinity])).toBeNull();
    expect(valueShade(1, null)).toBe(0.5);
  });
});

/** A stand-in Worker: records what it is sent; the test answers or fails it. */
class FakeWorker {
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  posted: { seq: number; input: LayoutInput }[] = [];
  terminated = false;
  postMessage(data: { seq: number; input: LayoutInput }): void { this.posted.push(data); }
  terminate(): void { this.terminated = true; }
  answer(): void {
    const job = this.posted.shift()!;
    this.onmessage?.({ data: { seq: job.seq, layout: layoutTree(job.input) } } as MessageEvent);
  }
  fail(): void { this.onerror?.(new Event("error") as ErrorEvent); }
}

describe("layout worker", () => {
  const c = complete(2, 2);
  const input: LayoutInput = { parent: c.parent, depth: c.depth, lane: c.depth.map(() => 0), visible: all(7), mode: "tree" };

  it("lays out in the worker when it answers", async () => {
    const fake = new FakeWorker();
    const layouter = new Layouter(() => fake as unknown as LayoutWorker);
    const done = layouter.run(input);
    expect(fake.posted.length).toBe(1);
    fake.answer();
    expect(await done).toEqual(layoutTree(input));
    expect(layouter.inWorker).toBe(true);
  });

  it("a worker error lays out the pending request and later ones on the main thread", async () => {
    const fake = new FakeWorker();
    const layouter = new Layouter(() => fake as unknown as LayoutWorker);
    const first = layouter.run(input);
    const second = layouter.run({ ...input, visible: [true, true, true, false, false, false, false] });
    fake.fail();
    expect(await first).toEqual(layoutTree(input));
    expect((await second).width).toBe(2);
    expect(fake.terminated).toBe(true);
    expect(layouter.inWorker).toBe(false);
    expect(await layouter.run(input)).toEqual(layoutTree(input));
    expect(fake.posted.length).toBe(2); // nothing more was sent to the failed worker
  });

  it("a worker that cannot be made, or cannot take the message, falls back too", async () => {
    const broken = new Layouter(() => { throw new Error("blob: workers are forbidden"); });
    expect(await broken.run(input)).toEqual(layoutTree(input));
    const fake = new FakeWorker();
    fake.postMessage = () => { throw new Error("DataCloneError"); };
    expect(await new Layouter(() => fake as unknown as LayoutWorker).run(input)).toEqual(layoutTree(input));
  });
});
