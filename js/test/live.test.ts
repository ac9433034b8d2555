import { describe, expect, it } from "vitest";
import live, { coalesce, LiveState, mountLive, StepState } from "../src/live";
import { FakeModel } from "./fake";

const HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', 'javascript:alert(1)',
  '<a href="javascript:alert(1)">x</a>'];

/** Every attribute value in the tree (model text must never end up in one). */
function attributes(root: Element): string[] {
  return [root, ...root.querySelectorAll("*")].flatMap((n) => [...n.attributes].map((a) => `${a.name}=${a.value}`));
}

function step(over: Partial<StepState>): StepState {
  return { kind: "draft", text: "", round: 0, agent: null, role: "assistant", parent: null, attributes: {},
    tokens: 3, seconds: 0.1, ...over };
}

function state(over: Partial<LiveState> = {}): LiveState {
  return { kind: "reflect", title: "reflect", steps: [], streaming: {}, status: "running", stop_reason: null,
    final_answer: null, stop_requested: false, ...over };
}

/** Mount with frames run at once (or queued in `frames`, to test coalescing). */
function mount(s: LiveState, frames?: (() => void)[]) {
  const model = new FakeModel(s as unknown as Record<string, unknown>);
  const host = document.createElement("div");
  mountLive(model as never, host, frames ? (cb) => frames.push(cb) : (cb) => cb());
  return { model, host };
}

describe("live view", () => {
  it("shows each step with its round, kind and text", () => {
    const { host } = mount(state({ steps: [step({ text: "first draft" }), step({ kind: "feedback", text: "shorter", round: 1 })] }));
    const labels = [...host.querySelectorAll(".rnb-label")].map((n) => n.textContent);
    expect(labels).toEqual(["round 0 · draft · 3 tokens", "round 1 · feedback · 3 tokens"]);
    expect(host.textContent).toContain("first draft");
  });

  it("updates when tokens stream in and when steps arrive", () => {
    const { model, host } = mount(state());
    model.set("streaming", { "0": { label: "draft", text: "Once upon" } });
    expect(host.querySelector(".streaming")?.textContent).toContain("Once upon");
    model.set("steps", [step({ text: "Once upon a time" })]);
    model.set("streaming", {});
    expect(host.querySelectorAll(".rnb-step").length).toBe(1);
  });

  it("renders a diff of a refined draft as insert and delete spans", () => {
    const diff = [{ op: "equal", text: "a " }, { op: "delete", text: "cat" }, { op: "insert", text: "dog" }] as const;
    const { host } = mount(state({ steps: [step({ kind: "refine", text: "a dog", diff: [...diff] })] }));
    expect(host.querySelector(".rnb-del")?.textContent).toBe("cat");
    expect(host.querySelector(".rnb-ins")?.textContent).toBe("dog");
  });

  it("marks step verdicts and the first wrong step in a critique", () => {
    const verdicts = [{ index: 1, text: "4*3=12", correct: true }, { index: 2, text: "20-12=7", correct: false }];
    const { host } = mount(state({ kind: "critique", steps: [step({ kind: "critique", verdicts, first_wrong_step: 2 })] }));
    expect(host.querySelector(".rnb-verdict.ok")?.textContent).toBe("4*3=12");
    expect(host.querySelector(".rnb-verdict.bad.first")?.textContent).toBe("20-12=7");
  });

  it("puts debate agents in one column each with the moderator underneath", () => {
    const steps = [step({ kind: "answer", agent: "agent 1", text: "7" }), step({ kind: "answer", agent: "agent 2", text: "8" }),
      step({ kind: "moderator", agent: "moderator", text: "{}" })];
    const { host } = mount(state({ kind: "debate", steps }));
    const grid = host.querySelector(".rnb-columns") as HTMLElement;
    expect(grid.children.length).toBe(2);
    expect(grid.nextElementSibling?.textContent).toContain("moderator");
  });

  it("sends a stop message when the stop button is clicked and hides it when done", () => {
    const { model, host } = mount(state());
    (host.querySelector(".rnb-stop") as HTMLButtonElement).click();
    expect(model.sent).toEqual([{ type: "stop" }]);
    expect((host.querySelector(".rnb-stop") as HTMLButtonElement).disabled).toBe(true);
    model.set("status", "interrupted");
    expect((host.querySelector(".rnb-stop") as HTMLElement).hidden).toBe(true);
    expect(host.querySelector(".rnb-status")?.textContent).toBe("interrupted");
  });

  it("keeps the same stop button while tokens stream, so a click between updates is not lost", () => {
    const { model, host } = mount(state());
    const button = host.querySelector(".rnb-stop") as HTMLButtonElement;
    model.set("streaming", { "0": { label: "draft", text: "Once" } });
    model.set("steps", [step({ text: "Once" })]);
    expect(host.querySelector(".rnb-stop")).toBe(button);
    button.click();
    button.click();
    expect(model.sent).toEqual([{ type: "stop" }]);
  });

  it("redraws streamed text at most once per frame however many updates arrive", () => {
    const frames: (() => void)[] = [];
    const { model, host } = mount(state(), frames);
    for (const text of ["a", "a b", "a b c"]) model.set("streaming", { "0": { label: "draft", text } });
    expect(frames.length).toBe(1);
    expect(host.querySelector(".streaming")).toBeNull();
    frames.shift()!();
    expect(host.querySelector(".streaming")?.textContent).toContain("a b c");
    model.set("streaming", { "0": { label: "draft", text: "a b c d" } });
    expect(frames.length).toBe(1);
  });

  it("coalesces calls until the scheduled frame runs", () => {
    const frames: (() => void)[] = [];
    let runs = 0;
    const draw = coalesce(() => { runs += 1; }, (cb) => frames.push(cb));
    draw(); draw(); draw();
    frames.forEach((f) => f());
    draw();
    expect([runs, frames.length]).toEqual([1, 2]);
  });

  it("renders through the anywidget entry point and returns a cleanup", () => {
    const model = new FakeModel(state({ steps: [step({ text: "hello" })] }) as unknown as Record<string, unknown>);
    const host = document.createElement("div");
    const cleanup = live.render({ model: model as never, el: host });
    expect(host.textContent).toContain("hello");
    cleanup();
    model.set("steps", []);
    expect(host.textContent).toContain("hello");
  });

  it("shows hostile model text as text: no element, attribute or link is created from it", () => {
    const steps = HOSTILE.map((text, i) => step({ text, agent: text, round: i }));
    const { host } = mount(state({ kind: "debate", steps, streaming: { "0": { label: HOSTILE[1], text: HOSTILE[0] } },
      status: "completed", final_answer: HOSTILE[2], stop_reason: HOSTILE[3],
      title: HOSTILE[0] }));
    expect(host.querySelectorAll("script, img, a, [onerror], [href], [src]").length).toBe(0);
    expect(attributes(host).filter((a) => a.includes("alert"))).toEqual([]);
    for (const text of HOSTILE) expect(host.textContent).toContain(text);
  });
});
