"""Static HTML renderings of runs and tokens, for places without a widget manager.

nbconvert exports, GitHub, VS Code fallbacks and terminals show these instead of the
live widgets, and results can use them for ``_repr_html_``. Every piece of model text
goes through :func:`html.escape` (quotes included); nothing here emits a script, an
event handler, a URL or a link, and the only ``style`` values are computed numbers.

Non-goals: interactivity (hover shows a ``title`` tooltip only), streaming.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable, Mapping

_STYLE = ("<style>.rnb-s{border-left:3px solid #cbd5e1;padding:2px 8px;margin:4px 0}"
          ".rnb-s.fb{border-color:#f59e0b}.rnb-l{font-size:11px;color:#64748b}"
          ".rnb-t{white-space:pre-wrap;margin:0;font-family:monospace}.rnb-k{white-space:pre-wrap;"
          "font-family:monospace}.rnb-r{text-decoration:underline;text-decoration-color:#7c3aed;"
          "text-decoration-thickness:2px}.rnb-ins{background:#dcfce7}.rnb-del{background:#fee2e2;"
          "text-decoration:line-through}.rnb-cols{display:grid;gap:8px}.rnb-bad{font-weight:bold}</style>")
_CRITIC_KINDS = {"feedback", "critique", "moderator", "judge"}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_steps_html(steps: Iterable[Mapping[str, Any]], kind: str = "", status: str | None = None,
                      final_answer: str | None = None, stop_reason: str | None = None) -> str:
    """A run's steps as self-contained, escaped HTML (no scripts, no links).

    Parameters
    ----------
    steps : iterable of dict
        ``LiveView.steps`` entries or ``Step.to_dict()`` rows (``kind``, ``text``, ``round``,
        ``agent``; optional ``diff`` ops and ``verdicts``).
    kind : str
        ``reflect`` | ``critique`` | ``debate`` | ``generate``; ``debate`` puts agents in columns.
    status, final_answer, stop_reason : str, optional

    Examples
    --------
    >>> out = render_steps_html([{"kind": "draft", "text": "<b>hi</b>", "round": 0}], "reflect")
    >>> "&lt;b&gt;hi&lt;/b&gt;" in out and "<b>hi" not in out
    True
    """
    steps = list(steps)
    parts = [_STYLE, f"<div class='rnb-static'><b>{_esc(kind)}</b>"]
    if status:
        parts.append(f" <span class='rnb-l'>{_esc(status)}</span>")
    parts.append(_debate_columns(steps) if kind == "debate" else "".join(_step(s) for s in steps))
    if final_answer is not None or stop_reason:
        parts.append(f"<div><b>answer:</b> {_esc(final_answer)} <span class='rnb-l'>stopped: "
                     f"{_esc(stop_reason)}</span></div>")
    parts.append("</div>")
    return "".join(parts)


def _step(step: Mapping[str, Any]) -> str:
    cls = "rnb-s fb" if step.get("kind") in _CRITIC_KINDS else "rnb-s"
    who = f" · {_esc(step.get('agent'))}" if step.get("agent") else ""
    body = _diff(step["diff"]) if step.get("diff") else _esc(step.get("text"))
    return (f"<div class='{cls}'><div class='rnb-l'>round {_esc(step.get('round', 0))} · "
            f"{_esc(step.get('kind'))}{who}</div><pre class='rnb-t'>{body}</pre>"
            f"{_verdicts(step)}</div>")


def _diff(ops: Iterable[Mapping[str, Any]]) -> str:
    tags = {"insert": "ins class='rnb-ins'", "delete": "del class='rnb-del'"}
    out = []
    for part in ops:
        tag = tags.get(str(part.get("op")))
        text = _esc(part.get("text"))
        out.append(f"<{tag}>{text}</{tag.split()[0]}>" if tag else text)
    return "".join(out)


def _verdicts(step: Mapping[str, Any]) -> str:
    items = []
    for v in step.get("verdicts") or []:
        mark = {True: "✓", False: "✗"}.get(v.get("correct"), "?")
        first = " class='rnb-bad'" if v.get("index") == step.get("first_wrong_step") else ""
        items.append(f"<li{first}>{mark} {_esc(v.get('text'))}</li>")
    return f"<ol>{''.join(items)}</ol>" if items else ""


def _debate_columns(steps: list[Mapping[str, Any]]) -> str:
    def is_agent(s: Mapping[str, Any]) -> bool:
        return bool(s.get("agent")) and s.get("kind") not in ("moderator", "judge")

    agents = list(dict.fromkeys(str(s["agent"]) for s in steps if is_agent(s)))
    cols = "".join(f"<div><div class='rnb-l'>{_esc(a)}</div>"
                   + "".join(_step(s) for s in steps if is_agent(s) and str(s["agent"]) == a) + "</div>"
                   for a in agents)
    grid = (f"<div class='rnb-cols' style='grid-template-columns:repeat({max(1, len(agents))},minmax(0,1fr))'>"
            f"{cols}</div>")
    return grid + "".join(_step(s) for s in steps if not is_agent(s))


def _shade(value: float | None, scale_max: float) -> str:
    x = 0.0 if value is None or scale_max <= 0 else min(1.0, max(0.0, value / scale_max))
    return f"hsl(12,85%,{round(97 - 45 * x)}%)"


def render_tokens_html(tokens: Iterable[Mapping[str, Any]], color_by: str = "entropy",
                       scale_max: float | None = None, palette: Mapping[str, str] | None = None) -> str:
    """Tokens as escaped spans coloured by entropy, -logprob or source; the tooltip shows the numbers.

    Parameters
    ----------
    tokens : iterable of dict
        ``TokenEvent.to_dict()`` rows (``text``, ``logprob``, ``entropy``, ``is_reflection``,
        ``schedule_value``, ``top``).
    color_by : ``"entropy"``, ``"logprob"`` or ``"source"``
    scale_max : float, optional
        The value drawn at full colour (default: the largest value present).
    palette : dict, optional
        ``source`` label -> background colour, for ``color_by="source"`` (``TokenView.palette``).

    Examples
    --------
    >>> out = render_tokens_html([{"text": "<Wait>", "entropy": 2.0, "is_reflection": True}])
    >>> "&lt;Wait&gt;" in out and "rnb-r" in out
    True
    """
    rows = list(tokens)
    values = [_value(t, color_by) for t in rows]
    top = scale_max or max([v for v in values if v is not None] or [1.0])
    spans = []
    for tok, value in zip(rows, values):
        cls = "rnb-k rnb-r" if tok.get("is_reflection") else "rnb-k"
        shade = _hex((palette or {}).get(tok.get("source"))) if color_by == "source" else _shade(value, top)
        spans.append(f"<span class='{cls}' style='background:{shade}' "
                     f"title='{_esc(_describe(tok))}'>{_esc(tok.get('text'))}</span>")
    return _STYLE + f"<div class='rnb-static'>{''.join(spans)}</div>"


def _hex(colour: Any) -> str:
    """``colour`` if it is ``#rrggbb``, else a neutral grey: a palette value never carries other CSS."""
    return colour if isinstance(colour, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", colour) else "#f1f5f9"


def _describe(tok: Mapping[str, Any]) -> str:
    """The hover text: numbers, schedule value, reflection mark and top alternatives."""
    def num(x: Any) -> str:
        return "–" if x is None else f"{float(x):.3f}"

    parts = [f"logprob {num(tok.get('logprob'))}", f"entropy {num(tok.get('entropy'))}"]
    if tok.get("source") is not None:
        parts.insert(0, f"by {tok['source']}")
    if tok.get("schedule_value") is not None:
        parts.append(f"schedule {num(tok['schedule_value'])}")
    if tok.get("is_reflection"):
        parts.append("reflection token")
    if tok.get("top"):
        parts.append("top: " + ", ".join(f"{str(t)!r} {float(lp):.2f}" for t, lp in tok["top"]))
    return " · ".join(parts)


def _value(tok: Mapping[str, Any], color_by: str) -> float | None:
    if color_by == "logprob":
        return None if tok.get("logprob") is None else -float(tok["logprob"])
    return None if tok.get("entropy") is None else float(tok["entropy"])
