// Token heat view: each generated token coloured by entropy or by -logprob; hover shows
// its numbers and the top alternatives. Mirrors reflectnb/widgets/tokens.py.
import { addStyle, clear, el, heat, watch, WidgetModel } from "./dom";

/** One token, as `TokenEvent.to_dict()`. */
export interface TokenState {
  position: number; text: string; logprob: number | null; entropy: number | null;
  is_reflection: boolean; schedule_value: number | null; intervention: string | null;
  top: [string, number][] | null;
}

/** The synced state of TokenView. */
export interface TokensState {
  tokens: TokenState[];
  color_by: "entropy" | "logprob";
  scale_max: number;
}

export function tokenValue(tok: TokenState, colorBy: TokensState["color_by"]): number | null {
  if (colorBy === "logprob") return tok.logprob === null ? null : -tok.logprob;
  return tok.entropy;
}

export function describe(tok: TokenState): string {
  const fmt = (x: number | null) => (x === null || x === undefined ? "–" : x.toFixed(3));
  const parts = [`#${tok.position} ${JSON.stringify(tok.text)}`, `logprob ${fmt(tok.logprob)}`,
    `entropy ${fmt(tok.entropy)}`];
  if (tok.schedule_value !== null && tok.schedule_value !== undefined) parts.push(`schedule ${fmt(tok.schedule_value)}`);
  if (tok.is_reflection) parts.push("reflection token");
  if (tok.intervention) parts.push(`intervention ${tok.intervention}`);
  if (tok.top && tok.top.length) parts.push("top: " + tok.top.map(([t, lp]) => `${JSON.stringify(t)} ${lp.toFixed(2)}`).join(", "));
  return parts.join(" · ");
}

export function renderTokens(model: WidgetModel<TokensState>, root: HTMLElement): void {
  clear(root);
  addStyle(root);
  const colorBy = model.get("color_by");
  const tip = el("div", "rnb-tip", "hover a token");
  const head = el("div", "rnb-head");
  const toggle = el("button", undefined, `colour: ${colorBy} (switch)`);
  toggle.addEventListener("click", () => {
    model.set?.("color_by", colorBy === "entropy" ? "logprob" : "entropy");
    model.save_changes?.();
  });
  head.appendChild(toggle);
  root.appendChild(head);
  const text = el("div", "rnb-tokens");
  const max = model.get("scale_max") || 1;
  for (const tok of model.get("tokens") || []) {
    const span = el("span", `rnb-tok${tok.is_reflection ? " reflection" : ""}`, tok.text);
    const value = tokenValue(tok, colorBy);
    span.style.background = heat(value === null ? 0 : value / max);
    span.addEventListener("mouseenter", () => { tip.textContent = describe(tok); });
    text.appendChild(span);
  }
  root.appendChild(text);
  root.appendChild(tip);
}

export default {
  render({ model, el: host }: { model: WidgetModel<TokensState>; el: HTMLElement }) {
    const root = el("div", "rnb rnb-tokens-view");
    host.appendChild(root);
    return watch(model, ["tokens", "color_by", "scale_max"], () => renderTokens(model, root));
  },
};
