"""Static HTML renderings of runs and tokens, for places without a widget manager.

nbconvert exports, GitHub, VS Code fallbacks and terminals show these instead of the
live widgets. Every piece of model text goes through :func:`html.escape`; nothing
here emits a script, an event handler or a link built from model text.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Mapping

_STYLE = ("<style>.rnb-s{border-left:3px solid #cbd5e1;padding:2px 8px;margin:4px 0}"
          ".rnb-s.fb{border-color:#f59e0b}.rnb-l{font-size:11px;color:#64748b}"
          ".rnb-t{white-space:pre-wrap;margin:0;font-family:monospace}.rnb-k{white-space:pre-wrap;"
          "font-family:monospace}.rnb-r{text-decoration:underline;text-decoration-color:#7c3aed}</style>")
_CRITIC_KINDS = {"feedback", "critique", "moderator", "judge"}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_steps_html(steps: Iterable[Mapping[str, Any]], kind: str = "", status: str | None = None,
                      final_answer: str | None = None, stop_reason: str | None = None) -> str:
    """A run's steps as self-contained, escaped HTML (no scripts)."""
    parts = [_STYLE, f"<div class='rnb-static'><b>{_esc(kind)}</b>"]
    if status:
        parts.append(f" <span class='rnb-l'>{_esc(status)}</span>")
    for step in steps:
        cls = "rnb-s fb" if step.get("kind") in _CRITIC_KINDS else "rnb-s"
        who = f" · {_esc(step.get('agent'))}" if step.get("agent") else ""
        parts.append(f"<div class='{cls}'><div class='rnb-l'>round {_esc(step.get('round', 0))} · "
                     f"{_esc(step.get('kind'))}{who}</div><pre class='rnb-t'>{_esc(step.get('text'))}</pre></div>")
    if final_answer is not None or stop_reason:
        parts.append(f"<div><b>answer:</b> {_esc(final_answer)} <span class='rnb-l'>stopped: "
                     f"{_esc(stop_reason)}</span></div>")
    parts.append("</div>")
    return "".join(parts)


def _shade(value: float | None, scale_max: float) -> str:
    x = 0.0 if value is None or scale_max <= 0 else min(1.0, max(0.0, value / scale_max))
    return f"hsl(12,85%,{round(97 - 45 * x)}%)"


def render_tokens_html(tokens: Iterable[Mapping[str, Any]], color_by: str = "entropy",
                       scale_max: float | None = None) -> str:
    """Tokens as escaped spans coloured by entropy or -logprob; the title shows the numbers."""
    rows = list(tokens)
    values = [_value(t, color_by) for t in rows]
    top = scale_max or max([v for v in values if v is not None] or [1.0])
    spans = []
    for tok, value in zip(rows, values):
        cls = "rnb-k rnb-r" if tok.get("is_reflection") else "rnb-k"
        title = f"logprob {tok.get('logprob')} · entropy {tok.get('entropy')}"
        spans.append(f"<span class='{cls}' style='background:{_shade(value, top)}' "
                     f"title='{_esc(title)}'>{_esc(tok.get('text'))}</span>")
    return _STYLE + f"<div class='rnb-static'>{''.join(spans)}</div>"


def _value(tok: Mapping[str, Any], color_by: str) -> float | None:
    if color_by == "logprob":
        return None if tok.get("logprob") is None else -float(tok["logprob"])
    return None if tok.get("entropy") is None else float(tok["entropy"])
