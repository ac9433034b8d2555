"""Static HTML for a :class:`TreeResult`: summary, best path, and a small SVG tree.

This is the fallback shown where no widget manager runs (nbconvert, GitHub,
plain IPython HTML). Every piece of model text goes through ``html.escape``
(inside SVG ``<title>`` tooltips too). The SVG draws at most ``MAX_SVG_NODES``
nodes (the first ones created; parents are always created before children).

Non-goals: interaction (the anywidget tree view does that).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from reflectnb.trace import Node

if TYPE_CHECKING:
    from reflectnb.strategies.tree.result import TreeResult

MAX_SVG_NODES = 300
COLORS = {"expanded": "#4c78a8", "selected": "#54a24b", "pruned": "#bab0ac", "terminal": "#f58518"}
_DX, _DY, _PAD = 26, 54, 16


def _value(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def layout(nodes: list[Node]) -> dict[int, tuple[float, float]]:
    """``node_id → (x, y)``: leaves side by side in depth-first order, parents centred above."""
    kids: dict[int | None, list[int]] = {}
    for n in nodes:
        kids.setdefault(n.parent, []).append(n.node_id)
    depth = {n.node_id: n.depth for n in nodes}
    pos: dict[int, tuple[float, float]] = {}
    next_x = [0.0]

    def place(nid: int) -> float:
        below = [place(c) for c in kids.get(nid, [])]
        x = sum(below) / len(below) if below else next_x[0]
        if not below:
            next_x[0] += 1
        pos[nid] = (x, float(depth[nid]))
        return x

    for root in kids.get(None, []):
        place(root)
    return pos


def tree_svg(result: "TreeResult") -> str:
    """The tree as an inline SVG (circles coloured by status, best path bold)."""
    nodes = result.nodes[:MAX_SVG_NODES]
    if not nodes:
        return ""
    known = {n.node_id for n in nodes}
    nodes = [n for n in nodes if n.parent is None or n.parent in known]
    pos = {k: (_PAD + x * _DX, _PAD + y * _DY) for k, (x, y) in layout(nodes).items()}
    best = set(result.best_path)
    edges = [f'<line x1="{pos[n.parent][0]:.0f}" y1="{pos[n.parent][1]:.0f}" x2="{pos[n.node_id][0]:.0f}" '
             f'y2="{pos[n.node_id][1]:.0f}" stroke="{"#222" if n.node_id in best else "#ccc"}" '
             f'stroke-width="{3 if n.node_id in best else 1}"/>' for n in nodes if n.parent is not None]
    dots = [_dot(n, pos[n.node_id], n.node_id in best) for n in nodes]
    width = max(x for x, _ in pos.values()) + _PAD
    height = max(y for _, y in pos.values()) + _PAD
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'class="reflectnb-tree-svg">{"".join(edges)}{"".join(dots)}</svg>')


def _dot(n: Node, xy: tuple[float, float], on_best: bool) -> str:
    tip = html.escape(f"#{n.node_id} [{n.status}] value {_value(n.value)}, visits {n.visits}\n{n.text}")
    ring = ' stroke="#222" stroke-width="2"' if on_best else ""
    return (f'<circle cx="{xy[0]:.0f}" cy="{xy[1]:.0f}" r="7" fill="{COLORS.get(n.status, "#999")}"{ring}>'
            f"<title>{tip}</title></circle>")


def legend() -> str:
    items = "".join(f'<span style="margin-right:10px"><span style="color:{c}">●</span> {s}</span>'
                    for s, c in COLORS.items())
    return f'<div style="font-size:12px">{items}</div>'


def result_html(result: "TreeResult") -> str:
    """The whole fallback view: summary table, best path, SVG tree."""
    esc = html.escape
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts().items()))
    summary = [("method", result.method), ("answer", result.answer), ("stop reason", result.stop_reason),
               ("nodes", f"{len(result.nodes)} ({counts})"),
               ("generate calls", f"{result.generate_calls} ({result.prompts_sent} prompts)")]
    rows = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
                   for k, v in summary)
    path = "".join(f"<li><code>#{n.node_id}</code> <span style='white-space:pre-wrap'>{esc(n.text)}</span> "
                   f"<small>(value {_value(n.value)}, visits {n.visits})</small></li>"
                   for n in (result.path(result.best_path[-1])[1:] if result.best_path else []))
    more = (f"<div><small>showing the first {MAX_SVG_NODES} of {len(result.nodes)} nodes</small></div>"
            if len(result.nodes) > MAX_SVG_NODES else "")
    return (f"<div class='reflectnb-tree'><b>Tree search</b> — {esc(result.question[:200])}"
            f"<table>{rows}</table><div><b>Best path</b><ol>{path}</ol></div>"
            f"{legend()}<div style='overflow:auto;max-height:480px'>{tree_svg(result)}</div>{more}</div>")
