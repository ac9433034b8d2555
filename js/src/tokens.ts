// Token heat view: each generated token coloured by entropy, by -logprob or by the model that
// wrote it (its `source`); hover shows its numbers and the top alternatives. Mirrors
// reflectnb/widgets/tokens.py, which computes the source palette.
import { addStyle, clear, el, heat, watch, WidgetModel } from "./dom";

/** One token, as `TokenEvent.to_dict()`. */
export interface TokenState {
  position: number; text: string; logprob: number | null; entropy: number | null;
  is_reflection: boolean; schedule_value: number | null; intervention: string | null;
  top: [string, number][] | null;
  source?: string | null;
}

/** The synced state of TokenView. */
export interface TokensState {
  tokens: TokenState[];
  color_by: "entropy" | "logprob" | "source";
  scale_max: number;
  palette?: Record<string, string>;
}

/** The colourings the switch cycles through; `source` only when tokens carry one. */
export function colourings(tokens: TokenState[]): TokensState["color_by"][] {
  return tokens.some((t) => t.source) ? ["entropy", "logprob", "source"] : ["entropy", "logprob"];
}

/** A palette colour if it is `#rrggbb` (never other CSS), else a neutral grey. */
export function sourceColour(palette: Record<string, string> | undefined, source: string | null | undefined): string {
  const colour = source && palette ? palette[source] : undefined;
  return typeof colour === "string" && /^#[0-9a-fA-F]{6}$/.test(colour) ? colour : "#f1f5f9";
}

export function tokenValue(tok: TokenState, colorBy: "entropy" | "logprob"): number | null {
  if (colorBy === "logprob") return tok.logprob === null ? null : -tok.logprob;
  return tok.entropy;
}

export function describe(tok: TokenState): string {
  const fmt = (x: number | null) => (x === null || x === undefined ? "–" : x.toFixed(3));
  const parts = [`#${tok.position} ${JSON.stringify(tok.text)}`, `logprob ${fmt(tok.logprob)}`,
    `entropy ${fmt(tok.entropy)}`];
  if (tok.source) parts.splice(1, 0, `by ${tok.source}`);
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
  const modes = colourings(model.get("tokens") || []);
  toggle.addEventListener("click", () => {
    model.set?.("color_by", modes[(modes.indexOf(colorBy) + 1) % modes.length]);
    model.save_changes?.();
  });
  head.appendChild(toggle);
  const palette = model.get("palette") || {};
  if (colorBy === "source") {
    for (const label of Object.keys(palette)) {
      const key = el("span", "rnb-source-key", ` ${label} `);
      key.style.background = sourceColour(palette, label);
      head.appendChild(key);
    }
  }
  root.appendChild(head);
  const text = el("div", "rnb-tokens");
  const max = model.get("scale_max") || 1;
  for (const tok of model.get("tokens") || []) {
    const span = el("span", `rnb-tok${tok.is_reflection ? " reflection" : ""}`, tok.text);
    if (colorBy === "source") {
      span.style.background = sourceColour(palette, tok.source);
    } else {
      const value = tokenValue(tok, colorBy as "entropy" | "logprob");
      span.style.background = heat(value === null ? 0 : value / max);
    }
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
    return watch(model, ["tokens", "color_by", "scale_max", "palette"], () => renderTokens(model, root));
  },
};
