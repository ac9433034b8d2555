// DOM helpers shared by the widgets. Model text is untrusted: it only ever enters the
// page through `textContent` (never innerHTML), and no link or attribute is built from it.

/** The subset of anywidget's model the views use (so tests can pass a small fake). */
export interface WidgetModel<S> {
  get<K extends keyof S>(key: K): S[K];
  on(event: string, callback: () => void): void;
  off?(event: string, callback?: () => void): void;
  send(content: unknown): void;
  set?<K extends keyof S>(key: K, value: S[K]): void;
  save_changes?(): void;
}

/** Make an element with an optional class and text (set as textContent). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, className?: string, text?: string | null,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** Remove every child of `node`. */
export function clear(node: HTMLElement): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** A colour from white (t=0) to a saturated hue (t=1); t is clamped to [0, 1]. */
export function heat(t: number, hue = 12): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const light = Math.round(97 - 45 * x);
  return `hsl(${hue}, 85%, ${light}%)`;
}

/** Re-render `draw` whenever one of `keys` changes on the model. */
export function watch<S>(model: WidgetModel<S>, keys: (keyof S)[], draw: () => void): () => void {
  const events = keys.map((k) => `change:${String(k)}`);
  events.forEach((e) => model.on(e, draw));
  draw();
  return () => events.forEach((e) => model.off?.(e, draw));
}

export const STYLE = `
.rnb { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px; color: var(--jp-ui-font-color1, #222); }
.rnb-head { display: flex; gap: 8px; align-items: center; margin-bottom: 6px; }
.rnb-status { padding: 1px 6px; border-radius: 8px; background: #eee; font-size: 11px; }
.rnb-status.running { background: #dbeafe; } .rnb-status.completed { background: #dcfce7; }
.rnb-status.interrupted, .rnb-status.failed { background: #fee2e2; }
.rnb-stop { margin-left: auto; cursor: pointer; }
.rnb-steps { display: flex; flex-direction: column; gap: 6px; }
.rnb-step { border-left: 3px solid #cbd5e1; padding: 2px 8px; }
.rnb-step.feedback, .rnb-step.critique, .rnb-step.moderator, .rnb-step.judge { border-color: #f59e0b; }
.rnb-step.interrupted { border-color: #ef4444; }
.rnb-label { font-size: 11px; color: #64748b; }
.rnb-text { white-space: pre-wrap; margin: 0; font-family: var(--jp-code-font-family, monospace); }
.rnb-ins { background: #dcfce7; } .rnb-del { background: #fee2e2; text-decoration: line-through; }
.rnb-columns { display: grid; gap: 8px; }
.rnb-verdict.ok::before { content: "✓ "; color: #16a34a; } .rnb-verdict.bad::before { content: "✗ "; color: #dc2626; }
.rnb-verdict.first { font-weight: bold; }
.rnb-final { margin-top: 6px; font-weight: bold; }
.rnb-tok { white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace); border-radius: 2px; }
.rnb-tok.reflection { text-decoration: underline; text-decoration-color: #7c3aed; text-decoration-thickness: 2px; }
.rnb-tip { font-size: 11px; color: #334155; min-height: 1.5em; margin-top: 4px; }
`;

/** Append the shared stylesheet once per widget root. */
export function addStyle(root: HTMLElement): void {
  const style = document.createElement("style");
  style.textContent = STYLE;
  root.appendChild(style);
}
