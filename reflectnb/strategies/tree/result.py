"""The result of a tree search, and the tree rebuilt from stored node rows.

:class:`TreeResult` holds every :class:`~reflectnb.trace.Node` in its latest
state (``node_id`` = index), the best path (root → answer node), the answer,
the stop reason and call counts. Nodes on the best path carry
``attributes["best"] = True``, so :meth:`TreeResult.rebuild_from_rows` can
recover the whole result from node rows alone — the dicts a
:class:`~reflectnb.trace.ListRecorder` or the trace store hands back (extra
columns are ignored; ``attributes`` may be a JSON string; SQL NULLs, which a
DataFrame shows as NaN / ``<NA>`` / ``NaT``, become ``None``; when a node was
reported several times, the last report wins).

A node's *state* (the partial solution) is its path's step texts, one per line;
the root's ``text`` is the question and is not part of the state.

Non-goals: running searches, widgets (the live tree view reads the same rows).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from reflectnb.trace import Node

NODE_FIELDS = [f.name for f in dataclasses.fields(Node)]


_NULL_TYPES = ("NAType", "NaTType")  # pandas' NA and NaT, named so this module need not import pandas


def plain_value(value: Any) -> Any:
    """A value from a SQL / DataFrame row as plain Python: NULL → ``None``, numpy scalars → int/float/str.

    A DataFrame turns SQL NULL into NaN, ``pd.NA`` or ``NaT`` depending on the column type.

    Examples
    --------
    >>> plain_value(float("nan")), plain_value("x"), plain_value(3)
    (None, 'x', 3)
    """
    if value is None or type(value).__name__ in _NULL_TYPES:
        return None
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return plain_value(value.item())
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def plain_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with every value made plain (see :func:`plain_value`)."""
    return {k: plain_value(v) for k, v in row.items()}


def node_from_row(row: Mapping[str, Any]) -> Node:
    """A :class:`Node` from a dict with (at least) the Node fields (SQL NULLs, even as NaN, become ``None``)."""
    values = {k: plain_value(row[k]) for k in NODE_FIELDS if k in row}
    attributes = values.get("attributes") or {}
    values["attributes"] = json.loads(attributes) if isinstance(attributes, str) else dict(attributes)
    if values.get("parent") is not None:
        values["parent"] = int(values["parent"])
    return Node(**values)


def nodes_from_rows(rows: Iterable[Mapping[str, Any] | Node]) -> list[Node]:
    """The latest state of every node, ordered by ``node_id`` (later rows win)."""
    latest: dict[int, Node] = {}
    for row in rows:
        node = row if isinstance(row, Node) else node_from_row(row)
        latest[int(node.node_id)] = dataclasses.replace(node, attributes=dict(node.attributes))
    return [latest[k] for k in sorted(latest)]


@dataclass
class TreeResult:
    """What a tree search returns.

    Attributes
    ----------
    method : str  ``bfs`` | ``dfs`` | ``mcts`` | ``best_of_n`` | ``self_consistency``
    question : str
    nodes : list[Node]  every node, latest state; ``nodes[i].node_id == i``; root is 0
    best_path : list[int]  node ids root → answer node
    answer : str
    stop_reason : str  ``depth`` | ``solved`` | ``iterations`` | ``max_visits`` | ``no_children`` |
        ``all_final`` | ``done`` | ``interrupted``
    generate_calls, prompts_sent : int  backend calls and prompts over the whole search
    """

    method: str = ""
    question: str = ""
    nodes: list[Node] = field(default_factory=list)
    best_path: list[int] = field(default_factory=list)
    answer: str = ""
    stop_reason: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    generate_calls: int = 0
    prompts_sent: int = 0
    run_id: str | None = None

    # -- navigation ---------------------------------------------------------------------------------------

    def children(self, node_id: int) -> list[Node]:
        """The children of a node, in creation order."""
        return [n for n in self.nodes if n.parent == node_id]

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the root to ``node_id``."""
        out = []
        current: int | None = node_id
        while current is not None:
            out.append(self.nodes[current])
            current = self.nodes[current].parent
        return out[::-1]

    def state(self, node_id: int) -> str:
        """The partial solution at a node: its path's step texts, one per line."""
        return "".join(n.text + "\n" for n in self.path(node_id)[1:])

    @property
    def best_node(self) -> Node | None:
        return self.nodes[self.best_path[-1]] if self.best_path else None

    def counts(self) -> dict[str, int]:
        """How many nodes have each status."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.status] = out.get(n.status, 0) + 1
        return out

    # -- export -------------------------------------------------------------------------------------------

    def node_rows(self) -> list[dict[str, Any]]:
        """One plain dict per node (the Node fields)."""
        return [n.to_dict() for n in self.nodes]

    def to_df(self):
        """A pandas DataFrame, one row per node (the Node fields plus ``best``)."""
        import pandas as pd

        rows = [{**r, "best": bool(r["attributes"].get("best"))} for r in self.node_rows()]
        return pd.DataFrame(rows, columns=[*NODE_FIELDS, "best"])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def rebuild_from_rows(cls, rows: Iterable[Mapping[str, Any] | Node], **fields: Any) -> "TreeResult":
        """A result rebuilt from node rows; best path and answer come from the ``best`` marks.

        Examples
        --------
        >>> r = TreeResult.rebuild_from_rows([{"node_id": 0, "parent": None, "depth": 0, "text": "Q",
        ...                                   "attributes": '{"best": true}'}])
        >>> r.best_path, r.question
        ([0], 'Q')
        """
        nodes = nodes_from_rows(rows)
        best = sorted((n for n in nodes if n.attributes.get("best")), key=lambda n: n.depth)
        fields.setdefault("question", nodes[0].text if nodes else "")
        fields.setdefault("answer", best[-1].attributes.get("answer", "") if best else "")
        return cls(nodes=nodes, best_path=[n.node_id for n in best], **fields)

    # -- display ------------------------------------------------------------------------------------------

    def __str__(self) -> str:
        lines = [f"TreeResult ({self.method}): {len(self.nodes)} nodes, stop: {self.stop_reason}",
                 f"answer: {self.answer}"]
        lines += [f"  {'  ' * n.depth}[{n.node_id}] {n.text[:70]} (value {_fmt(n.value)})"
                  for n in self.path(self.best_path[-1])] if self.best_path else []
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        from reflectnb.strategies.tree.render import result_html

        return result_html(self)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"
