"""TreeView: a reasoning tree you can explore — zoom, pan, fold, search, replay, select.

The widget holds the nodes (columnar, see :mod:`reflectnb.widgets.tree_data`),
the best path, extra edges and the selection; the front-end (``js/src/tree.ts``)
lays the tree out in a Web Worker and draws only what is in view, so 10,000
nodes stay responsive. ``view.selected`` is the node the user clicked; Python
then fills ``view.details`` with that node's prompt and attributes (prompts
stay in Python until asked for).

It is also a :class:`~reflectnb.trace.Recorder`: ``reflectnb.tree(..., live=True)``
and ``%%tree`` show the tree while it grows (synced at most every ``throttle``
seconds), and its stop button ends the search as ``interrupted`` like the live
view's. Reflect, critique and debate runs open in the same view
(:meth:`TreeView.from_steps`): a refinement chain is a path, a debate a layered
graph. Without a widget manager (nbconvert, GitHub) the escaped static SVG/HTML
of :mod:`reflectnb.strategies.tree.render` is shown instead.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

import anywidget
import traitlets

from reflectnb.errors import OptionError
from reflectnb.trace import Node, Score, Step, TokenEvent
from reflectnb.widgets.bundle import bundle
from reflectnb.widgets.live import _plain
from reflectnb.widgets.stop import StopListener
from reflectnb.widgets.throttle import Throttle
from reflectnb.widgets.tree_data import best_path, columns, nodes_from_steps

LAYOUTS = ("tree", "chain", "layered")


class TreeView(anywidget.AnyWidget):
    """Interactive tree view; also a Recorder.

    Examples
    --------
    >>> r = reflectnb.tree(Game24Task("4 9 10 13"), method="mcts", iterations=10)   # doctest: +SKIP
    >>> view = r.view(); view                                                        # doctest: +SKIP
    >>> view.selected, view.details["prompt"]        # after a click on a node        # doctest: +SKIP
    """

    _esm = bundle("tree")
    title = traitlets.Unicode("tree").tag(sync=True)
    status = traitlets.Unicode("completed").tag(sync=True)
    layout = traitlets.Unicode("tree").tag(sync=True)
    nodes = traitlets.Dict().tag(sync=True)
    edges = traitlets.List().tag(sync=True)
    best_path = traitlets.List().tag(sync=True)
    selected = traitlets.Int(None, allow_none=True).tag(sync=True)
    details = traitlets.Dict().tag(sync=True)
    stop_requested = traitlets.Bool(False).tag(sync=True)

    def __init__(self, nodes: Sequence[Node] = (), *, title: str = "tree", layout: str = "tree",
                 edges: Sequence[Sequence[int]] = (), lanes: dict[int, int] | None = None,
                 status: str = "completed", question: str | None = None, throttle: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, **kwargs: Any):
        if layout not in LAYOUTS:
            raise OptionError(f"`layout` must be one of {', '.join(LAYOUTS)}; got {layout!r}")
        self._throttle = Throttle(throttle, clock)
        super().__init__(title=title, layout=layout, status=status, **kwargs)
        self.throttle = throttle
        self._nodes: dict[int, Node] = {}
        self._lanes = dict(lanes or {})
        self._question = question
        self._steps = 0
        self._listener = StopListener(self.comm)
        self.on_msg(self._on_front_end_message)
        for node in nodes:
            self._nodes[node.node_id] = node
        self.edges = [list(e) for e in edges]
        self._sync()
        if not self._nodes:
            self._throttle.reset()  # a live view shows its first node at once

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_result(cls, result: Any, **kwargs: Any) -> "TreeView":
        """The view of a :class:`~reflectnb.strategies.tree.TreeResult`."""
        kwargs.setdefault("title", f"tree · {result.method}" if result.method else "tree")
        return cls(result.nodes, question=result.question, **kwargs)

    @classmethod
    def from_steps(cls, steps: Iterable[Step | dict[str, Any]], kind: str = "reflect", **kwargs: Any) -> "TreeView":
        """A reflect / critique run as a chain, a debate as a layered graph (round × agent)."""
        nodes, edges, lanes = nodes_from_steps(steps)
        layout = "layered" if kind.startswith("debate") else "chain"
        kwargs.setdefault("title", kind)
        return cls(nodes, layout=layout, edges=edges, lanes=lanes, **kwargs)

    @classmethod
    def from_run(cls, run_id: str, store: Any = None, **kwargs: Any) -> "TreeView":
        """Rebuild the view of a stored run from the trace store (nodes, else steps)."""
        from reflectnb.store import open_store
        from reflectnb.strategies.tree.result import TreeResult

        store = store if store is not None else open_store()
        runs = store.sql("SELECT kind FROM runs WHERE run_id = $id", {"id": run_id})
        if runs.empty:
            raise OptionError(f"no run {run_id!r} in the trace store {getattr(store, 'path', '')}")
        kind = str(runs["kind"].iloc[0])
        rows = store.sql("SELECT * FROM nodes WHERE run_id = $id ORDER BY node_id", {"id": run_id})
        kwargs.setdefault("title", f"{kind} · {run_id}")
        if not rows.empty:  # both rebuilds turn SQL NULLs (NaN / NA in a DataFrame) into None
            result = TreeResult.rebuild_from_rows(rows.to_dict("records"), method=kind)
            return cls(result.nodes, question=result.question, **kwargs)
        return cls.from_steps(store.run_df(run_id).to_dict("records"), kind=kind, **kwargs)

    # -- selection ------------------------------------------------------------------------
    @traitlets.observe("selected")
    def _fill_details(self, change: dict[str, Any]) -> None:
        node = self._nodes.get(change["new"]) if change["new"] is not None else None
        self.details = {} if node is None else {
            "id": node.node_id, "text": node.text, "value": node.value, "visits": node.visits,
            "status": node.status, "iteration": node.iteration, "prompt": node.prompt or "",
            "attributes": _plain(node.attributes)}

    @property
    def selected_node(self) -> Node | None:
        """The selected :class:`~reflectnb.trace.Node` (``None`` when nothing is selected)."""
        return self._nodes.get(self.selected) if self.selected is not None else None

    # -- Recorder -------------------------------------------------------------------------
    def on_node(self, node: Node) -> None:
        self._nodes[node.node_id] = node
        if self._throttle.ready():
            self._sync()

    def on_token(self, event: TokenEvent) -> None:
        pass  # the run context asks stop_listener between tokens

    def on_step(self, step: Step) -> int:
        self._steps += 1
        return self._steps - 1

    def on_score(self, score: Score) -> None:
        pass

    stop_message = "stopped from the tree view"

    @property
    def stop_listener(self) -> StopListener:
        """Where the stop button's click lands; the run context watches it between tokens."""
        return self._listener

    def _on_front_end_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "stop":
            self._listener.requested.set()  # may run on a subshell thread: the run context raises on its thread

    def _sync(self) -> None:
        self._throttle.mark()
        ordered = [self._nodes[k] for k in sorted(self._nodes)]
        self.nodes = columns(ordered, self._lanes)
        self.best_path = best_path(ordered)

    # -- life cycle -----------------------------------------------------------------------
    def show(self) -> "TreeView":
        """Display the view, keeping the handle so :meth:`finish` refreshes the static fallback."""
        from IPython.display import display

        self.status = "running"
        self._handle = display(self, display_id=True)
        return self

    def finish(self, status: str, stop_reason: str | None = None, final_answer: str | None = None) -> None:
        """Mark the run finished (``completed`` | ``interrupted`` | ``failed``) and sync every node."""
        self._listener.close()
        self.stop_requested = self._listener.requested.is_set()
        self._sync()
        self.status = status
        if getattr(self, "_handle", None) is not None:
            self._handle.update(self)

    # -- display --------------------------------------------------------------------------
    def tree_result(self) -> Any:
        """The nodes as a :class:`~reflectnb.strategies.tree.TreeResult` (for the static fallback)."""
        from reflectnb.strategies.tree.result import TreeResult

        ordered = [self._nodes[k] for k in sorted(self._nodes)]
        question = self._question if self._question is not None else (ordered[0].text if ordered else "")
        return TreeResult(method=self.title, question=question, nodes=ordered, best_path=best_path(ordered),
                          stop_reason=self.status)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from reflectnb.strategies.tree.render import result_html

        bundle_ = super()._repr_mimebundle_(**kwargs)
        data = bundle_[0] if isinstance(bundle_, tuple) else bundle_
        data["text/html"] = result_html(self.tree_result())
        data["text/plain"] = f"TreeView {self.title!r} [{self.status}]: {len(self._nodes)} nodes"
        return bundle_

