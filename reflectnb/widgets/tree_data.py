"""What the tree view draws, built from tree nodes or from a loop's steps.

Pure functions, no widget: :func:`columns` turns :class:`~reflectnb.trace.Node`
objects into the columnar dict the front-end reads (one list per field keeps
10,000 nodes compact on the wire), and :func:`nodes_from_steps` turns the steps
of a reflect, critique or debate run into nodes, so those runs open in the same
view: a refinement chain is a path (each step's ``parent`` is the step it
answers) and a debate is a layered graph (one row per round, one lane per agent,
``attributes["saw"]`` as extra edges to the answers an agent read).

Prompts are not in the columns: they can be long, so the widget sends only the
selected node's prompt.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from reflectnb.strategies.tree.result import plain_row, plain_value
from reflectnb.trace import Node, Step

FIELDS = ("id", "parent", "depth", "value", "visits", "status", "iteration", "text", "lane")
_ANSWERS = {"draft", "answer", "refine", "revise", "update", "argument", "judge", "moderator"}


def columns(nodes: Sequence[Node], lanes: dict[int, int] | None = None) -> dict[str, list[Any]]:
    """The columnar form of ``nodes`` (``nodes[i].node_id == i``)."""
    lanes = lanes or {}
    out: dict[str, list[Any]] = {f: [] for f in FIELDS}
    for n in nodes:
        out["id"].append(n.node_id)
        out["parent"].append(n.parent)
        out["depth"].append(n.depth)
        out["value"].append(None if n.value is None else float(n.value))
        out["visits"].append(n.visits)
        out["status"].append(n.status)
        out["iteration"].append(n.iteration)
        out["text"].append(n.text)
        out["lane"].append(lanes.get(n.node_id, 0))
    return out


def best_path(nodes: Sequence[Node]) -> list[int]:
    """Node ids marked ``attributes["best"]`` by the search, root first."""
    return [n.node_id for n in sorted((n for n in nodes if n.attributes.get("best")), key=lambda n: n.depth)]


def path_to_root(nodes: Sequence[Node], node_id: int) -> list[int]:
    """Ids from the root to ``node_id`` (stops at a missing or cyclic parent)."""
    out: list[int] = []
    current: int | None = node_id
    while current is not None and 0 <= current < len(nodes) and current not in out:
        out.append(current)
        current = nodes[current].parent
    return out[::-1]


def nodes_from_steps(steps: Iterable[Step | dict[str, Any]]) -> tuple[list[Node], list[list[int]], dict[int, int]]:
    """``(nodes, extra edges, lanes)`` for a loop's steps; node id = step index.

    Depth is the step's round (so a debate's rounds line up); the lane is the
    agent's column in order of first appearance. The last answer-like step and
    its ancestors are marked ``best``.
    """
    rows = [s.to_dict() if isinstance(s, Step) else plain_row(s) for s in steps]
    agents: dict[str | None, int] = {}
    nodes, edges, lanes = [], [], {}
    for i, row in enumerate(rows):
        parent = _index(row.get("parent"), len(rows))
        parent = None if parent == i else parent
        attributes = row.get("attributes") or {}
        attributes = json.loads(attributes) if isinstance(attributes, str) else dict(attributes)
        agent = row.get("agent")
        lanes[i] = agents.setdefault(agent, len(agents))
        label = f"{row.get('kind', '')}{' · ' + agent if agent else ''}"
        nodes.append(Node(node_id=i, parent=parent, depth=int(row.get("round") or 0), text=str(row.get("text", "")),
                          status="terminal" if row.get("kind") in ("judge",) else "expanded",
                          iteration=int(row.get("round") or 0), attributes={"step": label, **attributes}))
        for seen in attributes.get("saw") or []:
            seen = _index(seen, len(rows))
            if seen is not None and seen not in (parent, i):
                edges.append([seen, i])
    answers = [n.node_id for n, row in zip(nodes, rows) if row.get("kind") in _ANSWERS]
    if answers:
        for k in path_to_root(nodes, answers[-1]):
            nodes[k].attributes["best"] = True
    return nodes, edges, lanes


def _index(value: Any, n: int) -> int | None:
    """``value`` as a step index in ``range(n)``, else ``None`` (SQL NULL: see :func:`plain_value`)."""
    value = plain_value(value)
    if value is None:
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        return None
    return index if 0 <= index < n else None
