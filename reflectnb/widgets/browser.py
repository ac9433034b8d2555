"""RunBrowser: the runs of a trace store as a table, a page at a time, with each run's view below.

The widget holds the first page, the filter choices and the selection; the front-end
(``js/src/browser.ts``) asks for further pages, sorts and filters with messages
``{"type": "page", "id": n, "query": {...}}`` and gets ``{"type": "reply", "id": n,
"result": ...}`` or ``{..., "error": "what to do"}`` back. DuckDB does the filtering,
sorting and paging in the kernel (:mod:`reflectnb.store.browse`), so 100,000 runs are
never loaded at once. Selecting a run rebuilds its view from stored rows (the tree /
loop / debate view, the token view when tokens were stored, an evaluation item's
outcome) and shows it under the table. Selecting two runs (``{"type": "compare",
"run_ids": [a, b]}`` or :meth:`RunBrowser.compare`; the synced ``compared`` pair) sends
both answers with their word diff, the per-token entropy of each and, for evaluation
items, the outcome of each item side by side (:mod:`reflectnb.widgets.browser_compare`);
the front-end draws them. Tags and notes are an explicit action, written through the
store's background writer.

Without a widget manager (nbconvert, GitHub) the escaped table of the runs last shown
is the ``text/html`` fallback. Non-goals: comparing more than two runs, deleting runs, editing runs.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from reflectnb.errors import OptionError, ReflectnbError
from reflectnb.store import browse as queries
from reflectnb.store.browse_compare import eval_outcome
from reflectnb.widgets.browser_compare import comparison, comparison_html
from reflectnb.widgets.bundle import bundle

COLUMNS = (("kind", "kind"), ("method", "method"), ("model", "model"), ("status", "status"),
           ("started_at", "started"), ("seconds", "duration"), ("tokens", "tokens"), ("answer", "answer"),
           ("tags", "tags"))
EMPTY = ("No runs in the trace store {path} yet. Make one — reflectnb.reflect(\"Write a haiku about rain\") "
         "or a %%reflect cell — then press Refresh.")


def browse(store: Any = None, page_size: int = 50) -> RunBrowser:
    """Browse the runs of a trace store: filter, sort, page, open a run, tag and annotate it.

    Parameters
    ----------
    store : str, os.PathLike or TraceStore, optional
        The trace file (default: ``REFLECTNB_TRACES``, else ``.reflectnb/traces.duckdb``). A missing
        file is an error; reading never creates one.
    page_size : int
        Runs per page (1 to 500).

    Examples
    --------
    >>> browser = reflectnb.browse()                          # doctest: +SKIP
    >>> browser.page({"kind": "reflect", "search": "haiku"})   # doctest: +SKIP
    >>> browser.open_run(run_id); browser.tag(run_id, "good")      # doctest: +SKIP
    """
    return RunBrowser(store, page_size=page_size)


class RunBrowser(anywidget.AnyWidget):
    """A table of stored runs (paged, filtered and sorted by DuckDB) and the view of the selected run.

    ``browser.current`` holds the views of the run opened last; ``browser.shown`` the rows of
    the page shown last (also the static HTML form).
    """

    _esm = bundle("browser")
    store_path = traitlets.Unicode("").tag(sync=True)
    page_size = traitlets.Int(50).tag(sync=True)
    first_page = traitlets.Dict().tag(sync=True)
    facets = traitlets.Dict().tag(sync=True)
    empty_message = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    compared = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, store: Any = None, page_size: int = 50, **kwargs: Any):
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= queries.MAX_LIMIT:
            raise OptionError(f"`page_size` must be an integer from 1 to {queries.MAX_LIMIT}, got {page_size!r}")
        self.store = _open(store)
        super().__init__(store_path=str(self.store.path), page_size=page_size, **kwargs)
        self.current: list[Any] = []
        self.shown: list[dict[str, Any]] = []
        self._output: Any = None
        self._box: Any = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "page": lambda c: self.page(c.get("query") or {}), "facets": lambda c: self.refresh(),
            "open": lambda c: self._open_reply(c.get("run_id")),
            "compare": lambda c: self._compare(*_pair(c.get("run_ids"))),  # the page set `compared`
            "tag": lambda c: self.tag(c.get("run_id"), c.get("tag"), remove=bool(c.get("remove"))),
            "note": lambda c: {"notes": self.note(c.get("run_id"), c.get("note"))}}
        self.on_msg(self._on_message)
        self.refresh()

    # -- queries ---------------------------------------------------------------------------
    def refresh(self) -> dict[str, Any]:
        """Re-read the filter choices and the first page (runs recorded since appear)."""
        self.facets = queries.facets(self.store)
        self.empty_message = EMPTY.format(path=self.store.path) if self.facets["runs"] == 0 else ""
        self.first_page = self.page({"limit": self.page_size})
        return self.facets

    def page(self, query: dict[str, Any] | queries.RunQuery) -> dict[str, Any]:
        """One page of runs for ``query`` (see :class:`reflectnb.store.browse.RunQuery`)."""
        if not isinstance(query, queries.RunQuery):
            query = queries.RunQuery.from_dict({"limit": self.page_size, **query})
        result = queries.page_runs(self.store, query)
        self.shown = result["rows"]
        return result

    # -- one run ---------------------------------------------------------------------------
    def open_run(self, run_id: str) -> list[Any]:
        """Rebuild the views of a stored run, show them below the table and return them."""
        header = queries.run_header(self.store, _run_id(run_id))
        if header is None:
            raise OptionError(queries.missing_run(self.store, run_id))
        self.current = self._views(header)
        self.selected = run_id
        self.compared = []
        if self._output is not None:
            from IPython.display import display

            self._output.clear_output(wait=True)
            with self._output:
                for item in self.current:
                    display(item)
        return self.current

    def _views(self, header: dict[str, Any]) -> list[Any]:
        from IPython.display import HTML

        from reflectnb.widgets.tokens import TokenView
        from reflectnb.widgets.tree import TreeView

        views: list[Any] = [HTML(run_html(header))]
        if header["steps"] or header["node_rows"]:
            views.append(TreeView.from_run(header["run_id"], store=self.store))
        if header["token_rows"]:
            views.append(TokenView(queries.last_generation_tokens(self.store, header["run_id"])))
        return views

    def compare(self, run_a: str, run_b: str) -> dict[str, Any]:
        """Two runs side by side: both answers and their word diff, entropy curves, evaluation items.

        Returns the data the front-end draws (see :func:`reflectnb.widgets.browser_compare.comparison`);
        ``browser.current`` becomes its escaped static HTML, and the front-end shows the pair.

        Examples
        --------
        >>> data = browser.compare(first_id, second_id)     # doctest: +SKIP
        >>> data["similarity"], data["entropy"][0]["mean"]  # doctest: +SKIP
        """
        data = self._compare(run_a, run_b)
        self.compared = [run_a, run_b]  # the page sees the change and asks for the pair itself
        return data

    def _compare(self, run_a: Any, run_b: Any) -> dict[str, Any]:
        """The comparison without touching ``compared``: a request from the page must not echo back,
        or a reply to an older pair could overwrite the pair the user has ticked since."""
        from IPython.display import HTML

        data = comparison(self.store, _run_id(run_a), _run_id(run_b))
        self.current = [HTML(comparison_html(data))]
        if self._output is not None:  # the front-end draws the pair; the single run's views go
            self._output.clear_output()
        return data

    def _open_reply(self, run_id: Any) -> dict[str, Any]:
        views = self.open_run(run_id)
        return {"run_id": run_id, "views": [type(v).__name__ for v in views]}

    def tag(self, run_id: str, tag: str, remove: bool = False) -> dict[str, Any]:
        """Set (or remove) a tag on a run; returns ``{"run_id", "tags"}`` as stored."""
        tags = queries.add_tag(self.store, _run_id(run_id), tag, removed=remove)
        self.facets = queries.facets(self.store)
        self.shown = [{**row, "tags": tags} if row["run_id"] == run_id else row for row in self.shown]
        return {"run_id": run_id, "tags": tags}

    def note(self, run_id: str, note: str) -> list[str]:
        """Append a note to a run; returns its notes, oldest first."""
        return queries.add_note(self.store, _run_id(run_id), note)

    # -- messages --------------------------------------------------------------------------
    def handle(self, content: Any) -> dict[str, Any]:
        """The reply to one front-end request: ``{"type": "reply", "id", "result" | "error"}``."""
        ident = content.get("id") if isinstance(content, dict) else None
        reply: dict[str, Any] = {"type": "reply", "id": ident}
        handler = self._handlers.get(content.get("type")) if isinstance(content, dict) else None
        if handler is None:
            return {**reply, "error": f"unknown request {content!r:.80}; send one of {', '.join(self._handlers)}"}
        try:
            return {**reply, "result": handler(content)}
        except ReflectnbError as exc:
            return {**reply, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the front-end must get an answer, not wait forever
            return {**reply, "error": f"{type(exc).__name__}: {exc}"}

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and "id" in content:  # other messages (none yet) are not requests
            self.send(self.handle(content))

    # -- display ---------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        import ipywidgets

        if self._box is None:
            self._output = ipywidgets.Output()
            self._box = ipywidgets.VBox([self, self._output])
        bundle_ = self._box._repr_mimebundle_(**kwargs)
        data = bundle_[0] if isinstance(bundle_, tuple) else bundle_
        data["text/html"] = self._repr_html_()
        data["text/plain"] = f"RunBrowser({self.store.path!r}): {len(self.shown)} of {self.facets.get('runs', 0)} runs shown"
        return bundle_

    def _repr_html_(self) -> str:
        return runs_html(self.shown, self.facets.get("runs", 0), self.empty_message)


def runs_html(rows: list[dict[str, Any]], total: int, empty: str = "") -> str:
    """The runs shown, as an escaped static table (no scripts, links or styles from data).

    Examples
    --------
    >>> "&lt;b&gt;" in runs_html([{"kind": "reflect", "answer": "<b>", "tags": []}], 1)
    True
    """
    if not rows:
        return f"<div class='rnb-static'><p>{html.escape(empty or 'No runs match.')}</p></div>"
    head = "".join(f"<th>{label}</th>" for _, label in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row, key)}</td>" for key, _ in COLUMNS) + "</tr>" for row in rows)
    return (f"<div class='rnb-static'><p>{len(rows)} of {int(total)} runs</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def run_html(header: dict[str, Any]) -> str:
    """The escaped summary shown above a run's view: what ran, how it ended, tags, notes, scores."""
    what = " · ".join(_esc(header[k]) for k in ("kind", "model", "status"))
    lines = [f"<b>{what}</b> · <code>{_esc(header['run_id'])}</code>"]
    for label, key in (("task", "task"), ("answer", "final_answer"), ("stopped", "stop_reason"), ("error", "error")):
        if header.get(key):
            lines.append(_line(label, f"<span style='white-space:pre-wrap'>{_esc(header[key])}</span>"))
    item = eval_outcome(header.get("result"))
    if item:
        shown = [f"{_esc(k)} {_esc(item[k])}" for k in ("item_id", "status", "predicted", "gold", "correct") if k in item]
        lines.append(_line("evaluation item", " · ".join(shown)))
    if header.get("scores"):
        lines.append(_line("scores", ", ".join(_score(s) for s in header["scores"])))
    if header.get("tags"):
        lines.append(_line("tags", _esc(", ".join(header["tags"]))))
    lines += [_line("note", _esc(n)) for n in header.get("notes") or []]
    return "<div class='rnb-static rnb-run'>" + "".join(lines) + "</div>"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _line(label: str, escaped_body: str) -> str:
    return f"<div><b>{label}:</b> {escaped_body}</div>"


def _score(score: dict[str, Any]) -> str:
    label = f" ({_esc(score['label'])})" if score.get("label") else ""
    return f"{_esc(score['name'])} = {_esc(score['value'])}{label}"


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key == "tags":
        value = ", ".join(value or [])
    elif key == "seconds" and value is not None:
        value = f"{float(value):.2f} s"
    return html.escape("" if value is None else str(value))


def _run_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise OptionError(f"a run id must be text like '3f2a…' (from the table or result.run_id), got {value!r}")
    return value


def _pair(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise OptionError(f"compare needs two run ids, like [\"3f2a…\", \"9b1c…\"], got {value!r:.80}")
    return value[0], value[1]


def _open(store: Any) -> Any:
    """A TraceStore for ``store`` (a path, a store, or None for the default); never creates a file."""
    from reflectnb.store import TraceStore, open_store

    if isinstance(store, TraceStore):
        return store
    if store is None or isinstance(store, (str, os.PathLike)):
        return open_store(store, create=False)
    raise OptionError(f"`store` must be a path or a TraceStore, got {type(store).__name__}")
