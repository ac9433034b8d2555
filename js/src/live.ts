// Live view of a reflect / critique / debate / tree run: steps as they arrive, tokens as
// they stream, a stop button. Mirrors reflectnb/widgets/live.py.
import { addStyle, clear, el, watch, WidgetModel } from "./dom";

/** One diff operation between consecutive drafts (computed in Python with difflib). */
export interface DiffOp { op: "equal" | "insert" | "delete"; text: string }

/** One step of the run, as `Step.to_dict()` minus the heavy fields. */
export interface StepState {
  kind: string; text: string; round: number; agent: string | null; role: string;
  parent: number | null; attributes: Record<string, unknown>; tokens: number; seconds: number;
  diff?: DiffOp[]; verdicts?: { index: number; text: string; correct: boolean | null }[];
  first_wrong_step?: number | null;
}

/** The synced state of LiveView. */
export interface LiveState {
  kind: string;
  title: string;
  steps: StepState[];
  streaming: Record<string, { label: string; text: string }>;
  status: "running" | "completed" | "interrupted" | "failed";
  stop_reason: string | null;
  final_answer: string | null;
  stop_requested: boolean;
}

function renderDiff(ops: DiffOp[]): HTMLElement {
  const pre = el("pre", "rnb-text");
  for (const { op, text } of ops) {
    const cls = op === "insert" ? "rnb-ins" : op === "delete" ? "rnb-del" : undefined;
    pre.appendChild(el("span", cls, text));
  }
  return pre;
}

function renderVerdicts(step: StepState): HTMLElement {
  const list = el("ol", "rnb-verdicts");
  for (const v of step.verdicts ?? []) {
    const mark = v.correct === true ? "ok" : v.correct === false ? "bad" : "";
    const first = v.index === step.first_wrong_step ? " first" : "";
    list.appendChild(el("li", `rnb-verdict ${mark}${first}`, v.text));
  }
  return list;
}

export function renderStep(step: StepState): HTMLElement {
  const interrupted = step.attributes && step.attributes["interrupted"] ? " interrupted" : "";
  const box = el("div", `rnb-step ${step.kind}${interrupted}`);
  const who = step.agent ? ` · ${step.agent}` : "";
  box.appendChild(el("div", "rnb-label", `round ${step.round} · ${step.kind}${who} · ${step.tokens} tokens`));
  box.appendChild(step.diff && step.diff.length ? renderDiff(step.diff) : el("pre", "rnb-text", step.text));
  if (step.verdicts && step.verdicts.length) box.appendChild(renderVerdicts(step));
  return box;
}

function renderStreaming(streaming: LiveState["streaming"]): HTMLElement {
  const box = el("div", "rnb-streaming");
  for (const row of Object.keys(streaming).sort()) {
    const item = el("div", "rnb-step streaming");
    item.appendChild(el("div", "rnb-label", `${streaming[row].label} · generating…`));
    item.appendChild(el("pre", "rnb-text", streaming[row].text));
    box.appendChild(item);
  }
  return box;
}

/** Debates: one column per agent; moderator / judge steps underneath. */
function renderColumns(steps: StepState[]): HTMLElement {
  const agents = [...new Set(steps.filter((s) => s.agent && !["moderator", "judge"].includes(s.kind))
    .map((s) => s.agent as string))];
  const wrap = el("div");
  const grid = el("div", "rnb-columns");
  grid.style.gridTemplateColumns = `repeat(${Math.max(1, agents.length)}, minmax(0, 1fr))`;
  for (const agent of agents) {
    const col = el("div", "rnb-steps");
    col.appendChild(el("div", "rnb-label", agent));
    steps.filter((s) => s.agent === agent && !["moderator", "judge"].includes(s.kind))
      .forEach((s) => col.appendChild(renderStep(s)));
    grid.appendChild(col);
  }
  wrap.appendChild(grid);
  steps.filter((s) => !s.agent || ["moderator", "judge"].includes(s.kind))
    .forEach((s) => wrap.appendChild(renderStep(s)));
  return wrap;
}

/** Calls `fn` at most once per frame however often the returned function is called. */
export function coalesce(fn: () => void, frame: (cb: () => void) => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    frame(() => { pending = false; fn(); });
  };
}

const nextFrame = (cb: () => void): void => {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(() => cb());
  else setTimeout(cb, 16);
};

/**
 * Build the view once and update it in place. The header (status, stop button) is never
 * rebuilt, so a click is not lost when tokens stream in between mouse-down and mouse-up;
 * the step list is redrawn only when steps change, the streaming box at most once a frame.
 */
export function mountLive(model: WidgetModel<LiveState>, root: HTMLElement,
  frame: (cb: () => void) => void = nextFrame): () => void {
  clear(root);
  addStyle(root);
  const head = el("div", "rnb-head");
  const title = el("strong");
  const status = el("span", "rnb-status");
  const stop = el("button", "rnb-stop", "■ Stop");
  stop.type = "button";
  stop.addEventListener("click", () => {
    if (stop.disabled) return;
    model.send({ type: "stop" });
    stop.textContent = "stopping…";
    stop.disabled = true;
  });
  head.append(title, status, stop);
  const steps = el("div");
  const streaming = el("div");
  const final = el("div", "rnb-final");
  root.append(head, steps, streaming, final);

  const drawHead = () => {
    const state = model.get("status");
    title.textContent = model.get("title") || model.get("kind");
    status.textContent = state;
    status.className = `rnb-status ${state}`;
    stop.hidden = state !== "running";
    if (model.get("stop_requested")) { stop.disabled = true; stop.textContent = "stopping…"; }
    drawFinal();
  };
  const drawFinal = () => {
    const running = model.get("status") === "running";
    const answer = model.get("final_answer");
    const reason = model.get("stop_reason");
    final.hidden = running;
    final.textContent = running ? "" : (answer !== null && answer !== undefined ? `answer: ${answer}` : "no answer")
      + (reason ? ` · stopped: ${reason}` : "");
  };
  const drawSteps = () => {
    clear(steps);
    const list = model.get("steps") || [];
    steps.appendChild(model.get("kind") === "debate" ? renderColumns(list) : stepsList(list));
  };
  const drawStreaming = () => { clear(streaming); streaming.appendChild(renderStreaming(model.get("streaming") || {})); };
  const unwatch = [
    watch(model, ["status", "title", "stop_requested", "final_answer", "stop_reason"], drawHead),
    watch(model, ["steps", "kind"], drawSteps),
    watch(model, ["streaming"], coalesce(drawStreaming, frame)),
  ];
  drawStreaming();
  return () => unwatch.forEach((off) => off());
}

function stepsList(steps: StepState[]): HTMLElement {
  const list = el("div", "rnb-steps");
  steps.forEach((s) => list.appendChild(renderStep(s)));
  return list;
}

export default {
  render({ model, el: host }: { model: WidgetModel<LiveState>; el: HTMLElement }) {
    const root = el("div", "rnb rnb-live");
    host.appendChild(root);
    return mountLive(model, root);
  },
};
