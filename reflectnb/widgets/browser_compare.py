"""Two stored runs side by side, for the run browser: the data the front-end draws and its static HTML.

:func:`comparison` adds the word diff of the two answers (:func:`reflectnb.strategies.diff.diff_ops`)
to the store's :func:`~reflectnb.store.browse_compare.compare_runs`; ``js/src/browser.ts`` draws the
answers, the diff, an overlay chart of per-token entropy (SVG, no external library) and the item
outcomes from it. :func:`comparison_html` is the same comparison as escaped static HTML (no chart) for
``browser.current`` and for places without a widget manager.

Non-goals: comparing more than two runs, token alignment.
"""

from __future__ import annotations

import html
from typing import Any

from reflectnb.store.browse_compare import compare_runs
from reflectnb.strategies.diff import diff_html, diff_ops, similarity

SIDES = ("A", "B")


def comparison(store: Any, run_a: str, run_b: str) -> dict[str, Any]:
    """The comparison of two runs as plain values (see :func:`compare_runs`), plus ``diff`` and ``similarity``.

    Examples
    --------
    >>> data = comparison(store, a, b)            # doctest: +SKIP
    >>> [(op["op"], op["a"], op["b"]) for op in data["diff"]][:2]   # doctest: +SKIP
    """
    data = compare_runs(store, run_a, run_b)
    old, new = (run.get("final_answer") or "" for run in data["runs"])
    data["diff"] = [op.to_dict() for op in diff_ops(old, new)]
    data["similarity"] = similarity(old, new)
    return data


def comparison_html(data: dict[str, Any]) -> str:
    """Escaped HTML: each run's summary and answer, the word diff A → B, and the item outcomes."""
    columns = "".join(f"<div>{_side(label, run)}</div>" for label, run in zip(SIDES, data["runs"]))
    old, new = (run.get("final_answer") or "" for run in data["runs"])
    grid = "display:grid;grid-template-columns:1fr 1fr;gap:8px"
    parts = [f"<div class='rnb-static rnb-compare' style='{grid}'>{columns}</div>",
             (f"<div><b>word diff A → B</b> ({data.get('similarity', 0):.0%} alike): "
              f"<span style='white-space:pre-wrap'>{diff_html(old, new)}</span></div>")]
    curves = [c for c in data.get("entropy", []) if c.get("mean") is not None]
    if curves:
        means = ", ".join(f"{label} {c['mean']:.3f}" if c.get("mean") is not None else f"{label} —"
                          for label, c in zip(SIDES, data["entropy"]))
        parts.append(f"<div><b>mean token entropy (nats):</b> {means}</div>")
    if data.get("items"):
        parts.append(_items_table(data))
    return "<div class='rnb-static'>" + "".join(parts) + "</div>"


def _side(label: str, run: dict[str, Any]) -> str:
    what = " · ".join(_esc(run[k]) for k in ("kind", "model", "status"))
    lines = [f"<b>{label}</b>: {what} <code>{_esc(run['run_id'])}</code>"]
    if run.get("task"):
        lines.append(f"<div><b>task:</b> <span style='white-space:pre-wrap'>{_esc(run['task'])}</span></div>")
    lines.append(f"<div><b>answer:</b> <span style='white-space:pre-wrap'>{_esc(run.get('final_answer'))}</span></div>")
    outcome = run.get("outcome")
    if outcome:
        shown = " · ".join(f"{_esc(k)} {_esc(outcome[k])}" for k in ("item_id", "predicted", "gold", "correct")
                           if k in outcome)
        lines.append(f"<div><b>evaluation item:</b> {shown}</div>")
    return "".join(lines)


def _items_table(data: dict[str, Any]) -> str:
    head = "<tr><th>item</th><th>gold</th><th>A predicted</th><th>A</th><th>B predicted</th><th>B</th></tr>"
    body = "".join(
        f"<tr><td>{_esc(r['item_id'])}</td><td>{_esc(r['gold'])}</td><td>{_esc(r['a_predicted'])}</td>"
        f"<td>{_mark(r['a_correct'])}</td><td>{_esc(r['b_predicted'])}</td><td>{_mark(r['b_correct'])}</td></tr>"
        for r in data["items"])
    summary = data.get("summary") or {}
    counts = " · ".join(f"{label} {summary[s]['correct']}/{summary[s]['items']} correct"
                        for label, s in zip(SIDES, ("a", "b")) if s in summary)
    return (f"<div><b>items</b> ({len(data['items'])} of {int(data.get('items_total', 0))}; {counts}; "
            f"{summary.get('differs', 0)} differ)<table><thead>{head}</thead><tbody>{body}</tbody></table></div>")


def _mark(correct: Any) -> str:
    return {True: "✓", False: "✗"}.get(correct, "—")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))
