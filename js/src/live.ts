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

export function renderLive(model: WidgetModel<LiveState>, root: HTMLElement): void {
  clear(root);
  addStyle(root);
  const status = model.get("status");
  const head = el("div", "rnb-head");
  head.appendChild(el("strong", undefined, model.get("title") || model.get("kind")));
  head.appendChild(el("span", `rnb-status ${status}`, status));
  if (status === "running") {
    const stop = el("button", "rnb-stop", model.get("stop_requested") ? "stopping…" : "■ Stop");
    stop.disabled = model.get("stop_requested");
    stop.addEventListener("click", () => { model.send({ type: "stop" }); stop.textContent = "stopping…"; });
    head.appendChild(stop);
  }
  root.appendChild(head);
  const steps = model.get("steps") || [];
  root.appendChild(model.get("kind") === "debate" ? renderColumns(steps) : stepsList(steps));
  root.appendChild(renderStreaming(model.get("streaming") || {}));
  const answer = model.get("final_answer");
  const reason = model.get("stop_reason");
  if (status !== "running") {
    const text = `${answer !== null && answer !== undefined ? `answer: ${answer}` : "no answer"}`
      + (reason ? ` · stopped: ${reason}` : "");
    root.appendChild(el("div", "rnb-final", text));
  }
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
    return watch(model, ["steps", "streaming", "status", "stop_reason", "final_answer", "stop_requested", "title"],
      () => renderLive(model, root));
  },
};
