"""The queries behind the run browser: one page of runs at a time, filtered and sorted by DuckDB.

Contract
--------
* :class:`RunQuery` is what a front-end may ask for: equality filters on
  ``kind`` (``eval`` also matches ``eval:<method>``), ``model``, ``status`` and
  ``tag``; a time range on ``started_at``; a case-insensitive text ``search``
  over the run id, name, task, answer and model (``%``, ``_`` and ``\\`` match themselves); a ``sort`` from :data:`SORTS` (a whitelist: a
  column name is never taken from the request); ``offset``/``limit`` paging.
  Bad values raise :class:`~reflectnb.errors.OptionError` naming the field.
* Every value is bound as a DuckDB parameter; the SQL text is built only from
  the fixed fragments in this module, so a search for ``'; DROP TABLE runs; --``
  finds runs containing that text and nothing else.
* Reads open the file read-only for one query (see :mod:`reflectnb.store.connection`)
  after the store's writer has flushed, so a page shows what was recorded before it.
* Tags and notes are written through the store's background writer
  (:meth:`reflectnb.store.writer.Writer.submit`), appended to ``run_tags`` /
  ``run_notes``; the latest row of a (run, tag) pair says whether it is set.

Non-goals: full-text ranking, counting facets per filter, deleting runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import duckdb

from reflectnb.errors import OptionError, TraceStoreError
from reflectnb.store.queries import QueryError
from reflectnb.store.writer import Batch

SORTS = {"started": "r.started_at", "duration": "r.seconds", "tokens": "r.completion_tokens",
         "kind": "r.kind", "method": "method", "model": "r.model", "status": "r.status"}
MAX_LIMIT = 500
PREVIEW = 160
MAX_TAG, MAX_NOTE = 40, 10_000
SEARCHED = ("task", "final_answer", "run_id", "name", "model")

_COLUMNS = f"""r.run_id, r.name, r.kind, coalesce(json_extract_string(r.params, '$.method'), '') AS method,
    r.model, r.status, r.started_at, r.seconds, r.completion_tokens AS tokens,
    left(coalesce(r.final_answer, ''), {PREVIEW}) AS answer, r.error"""
_FILTERS = {
    "kind": "(r.kind = $kind OR starts_with(r.kind, $kind || ':'))",
    "model": "r.model = $model",
    "status": "r.status = $status",
    "since": "r.started_at >= CAST($since AS TIMESTAMPTZ)",
    "until": "r.started_at < CAST($until AS TIMESTAMPTZ)",
    "search": "(" + " OR ".join(f"r.{c} ILIKE $search" for c in SEARCHED) + ")",
    "tag": "r.run_id IN (SELECT run_id FROM run_tag_list WHERE list_contains(tags, $tag))",
}
# ILIKE with an ESCAPE clause scans about 2.5x slower than without (DuckDB 1.x, 100,000 runs), so text with
# a wildcard character in it is matched literally with contains() on lowered text instead of being escaped.
_SEARCH_LITERAL = "(" + " OR ".join(f"contains(lower(r.{c}), $search)" for c in SEARCHED) + ")"
_WILDCARDS = ("%", "_", "\\")


@dataclass(frozen=True)
class RunQuery:
    """One page request; every field is optional.

    Examples
    --------
    >>> RunQuery.from_dict({"kind": "reflect", "search": "O'Brien", "sort": "duration"}).where()[1]
    {'kind': 'reflect', 'search': "%O'Brien%"}
    """

    kind: str | None = None
    model: str | None = None
    status: str | None = None
    tag: str | None = None
    since: str | None = None
    until: str | None = None
    search: str | None = None
    sort: str = "started"
    descending: bool = True
    offset: int = 0
    limit: int = 50

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunQuery:
        """Validate a request from the front-end (unknown keys and bad types are refused)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionError(f"unknown run filter {unknown[0]!r}; use one of {', '.join(sorted(known))}")
        values = {k: v for k, v in data.items() if v is not None and v != ""}
        for name in ("kind", "model", "status", "tag", "since", "until", "search", "sort"):
            if name in values and not isinstance(values[name], str):
                raise OptionError(f"run filter {name!r} must be text, got {type(values[name]).__name__}")
        query = cls(**values)
        query._check()
        return query

    def _check(self) -> None:
        if not isinstance(self.descending, bool):
            raise OptionError(f"`descending` must be true or false, got {self.descending!r}")
        if self.sort not in SORTS:
            raise OptionError(f"cannot sort runs by {self.sort!r}; sort by one of {', '.join(SORTS)}")
        for name, value, low, high in (("offset", self.offset, 0, None), ("limit", self.limit, 1, MAX_LIMIT)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                raise OptionError(f"`{name}` must be an integer from {low}{f' to {high}' if high else ' up'}, "
                                  f"got {value!r}")
        for name in ("since", "until"):
            _instant(name, getattr(self, name))

    def where(self) -> tuple[str, dict[str, Any]]:
        """The WHERE clause (fixed fragments joined by AND) and its bound values."""
        params = {name: getattr(self, name) for name in _FILTERS if getattr(self, name) is not None}
        for name in ("since", "until"):
            if name in params:
                params[name] = _instant(name, params[name]).isoformat()
        fragments = dict(_FILTERS)
        if "search" in params:
            literal = any(c in params["search"] for c in _WILDCARDS)
            fragments["search"] = _SEARCH_LITERAL if literal else _FILTERS["search"]
            params["search"] = params["search"].lower() if literal else f"%{params['search']}%"
        clause = " AND ".join(fragments[name] for name in params) or "TRUE"
        return clause, params


def _instant(name: str, value: str | None) -> dt.datetime | None:
    """An ISO date or time; a bare ``until`` date means the end of that day (UTC unless given)."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise OptionError(f"`{name}` must be an ISO date or time like 2026-01-31 or 2026-01-31T09:30, "
                          f"got {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if name == "until" and len(value) == 10:
        when += dt.timedelta(days=1)
    return when


@contextlib.contextmanager
def reading(store: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``store`` after its writer has flushed; DuckDB errors become QueryError."""
    store.writer.flush(timeout=10.0)
    try:
        with store.db.connect(read_only=True) as con:
            yield con
    except duckdb.Error as exc:
        raise QueryError(f"reading the runs failed: {str(exc).splitlines()[0][:300]}") from None


def page_runs(store: Any, query: RunQuery) -> dict[str, Any]:
    """One page of runs: ``{"rows": [...], "total": n, "offset": o, "limit": l}``.

    Examples
    --------
    >>> page_runs(open_store(":memory:"), RunQuery(limit=10))["total"]   # doctest: +SKIP
    0
    """
    clause, params = query.where()
    order = f"{SORTS[query.sort]} {'DESC' if query.descending else 'ASC'} NULLS LAST"
    # A filtered count rides along as a window, so a text search scans the texts once, not twice;
    # without filters DuckDB counts from metadata and the window would only cost time.
    count = "count(*) OVER ()" if params else "NULL"
    sql = (f"SELECT {_COLUMNS}, {count} AS total_ FROM runs r WHERE {clause} ORDER BY {order}, r.run_id "
           "LIMIT $limit OFFSET $offset")
    with reading(store) as con:
        cursor = con.execute(sql, {**params, "limit": query.limit, "offset": query.offset})
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, map(plain, values))) for values in cursor.fetchall()]
        total = rows[0]["total_"] if rows and params else con.execute(  # no filter, or past the last page
            f"SELECT count(*) FROM runs r WHERE {clause}", params or None).fetchone()[0]
        for row in rows:
            del row["total_"]
        tags = _tags(con, [r["run_id"] for r in rows])
    for row in rows:
        row["tags"] = tags.get(row["run_id"], [])
    return {"rows": rows, "total": int(total), "offset": query.offset, "limit": query.limit}


def facets(store: Any) -> dict[str, Any]:
    """The values the filters offer: kinds, models, statuses and tags present, and the run count."""
    with reading(store) as con:
        runs, kinds, models, statuses = con.execute(
            "SELECT count(*), list(DISTINCT kind ORDER BY kind), list(DISTINCT model ORDER BY model), "
            "list(DISTINCT status ORDER BY status) FROM runs").fetchone()
        tags = con.execute("SELECT list(DISTINCT t ORDER BY t) FROM (SELECT unnest(tags) AS t FROM run_tag_list)"
                           ).fetchone()[0]
    return {"runs": int(runs), "kinds": _present(kinds), "models": _present(models),
            "statuses": _present(statuses), "tags": _present(tags)}


def run_header(store: Any, run_id: str) -> dict[str, Any] | None:
    """What the browser shows above a run's view (None when no such run exists)."""
    with reading(store) as con:
        return header_from(con, run_id)


def header_from(con: Any, run_id: str) -> dict[str, Any] | None:
    """:func:`run_header` on an open connection (the comparison reads two runs through one)."""
    cursor = con.execute("""SELECT run_id, name, kind, model, status, error, started_at, seconds, steps,
        prompt_tokens, completion_tokens, task, final_answer, stop_reason, CAST(result AS VARCHAR) AS result,
        json_extract_string(params, '$.eval_id') AS eval_id,
        (SELECT count(*) FROM tokens t WHERE t.run_id = r.run_id) AS token_rows,
        (SELECT count(*) FROM node_events n WHERE n.run_id = r.run_id) AS node_rows
        FROM runs r WHERE run_id = $id""", {"id": run_id})
    names = [d[0] for d in cursor.description]
    found = cursor.fetchone()
    if found is None:
        return None
    header = dict(zip(names, map(plain, found)))
    header["tags"] = _tags(con, [run_id]).get(run_id, [])
    header["notes"] = [plain(n) for (n,) in con.execute(
        "SELECT note FROM run_notes WHERE run_id = $id ORDER BY created_at", {"id": run_id}).fetchall()]
    header["scores"] = [dict(zip(("name", "value", "label", "explanation"), map(plain, s))) for s in con.execute(
        "SELECT name, value, label, explanation FROM scores WHERE run_id = $id ORDER BY score_index",
        {"id": run_id}).fetchall()]
    return header


def last_generation_tokens(store: Any, run_id: str) -> list[dict[str, Any]]:
    """The tokens of the run's last generation (first batch row), in order, for the token view."""
    with reading(store) as con:
        cursor = con.execute("""SELECT position, text, logprob, entropy, is_reflection, schedule_value,
            intervention, top FROM tokens WHERE run_id = $id
            AND gen_index = (SELECT max(gen_index) FROM tokens WHERE run_id = $id)
            QUALIFY row = min(row) OVER () ORDER BY position""", {"id": run_id})
        names = [d[0] for d in cursor.description]
        out = [dict(zip(names, map(plain, values))) for values in cursor.fetchall()]
    for tok in out:
        tok["top"] = [(t["text"], t["logprob"]) for t in tok["top"]] if tok["top"] else None
    return out


def add_tag(store: Any, run_id: str, tag: str, removed: bool = False) -> list[str]:
    """Set (or with ``removed=True`` clear) ``tag`` on a run, through the writer; returns its tags."""
    tag = _label(tag)
    _write(store, run_id, "INSERT INTO run_tags VALUES (?, ?, ?, ?)", [run_id, tag, removed])
    with reading(store) as con:
        return _tags(con, [run_id]).get(run_id, [])


def add_note(store: Any, run_id: str, note: str) -> list[str]:
    """Append a note to a run, through the writer; returns the run's notes, oldest first."""
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE:
        raise OptionError(f"a note must be non-empty text of at most {MAX_NOTE} characters")
    _write(store, run_id, "INSERT INTO run_notes VALUES (?, ?, ?)", [run_id, note.strip()])
    return (run_header(store, run_id) or {}).get("notes", [])


def _label(tag: Any) -> str:
    text = tag.strip() if isinstance(tag, str) else ""
    if not text or len(text) > MAX_TAG or any(c.isspace() and c != " " or not c.isprintable() for c in text):
        raise OptionError(f"a tag must be 1 to {MAX_TAG} printable characters on one line, got {tag!r}")
    return text


def _write(store: Any, run_id: str, sql: str, values: list[Any]) -> None:
    """Queue one bound INSERT on the store's writer, wait for it, and raise if it was not written."""
    with reading(store) as con:
        exists = con.execute("SELECT count(*) FROM runs WHERE run_id = $id", {"id": run_id}).fetchone()[0]
    if not exists:
        raise OptionError(missing_run(store, run_id))
    key = f"annotation:{uuid.uuid4()}"
    store.writer.submit(Batch(key, statements=[(sql, [*values, dt.datetime.now(dt.UTC)])]))
    store.writer.flush(timeout=30.0)
    failed = store.writer.take_failed(key)
    if failed:
        raise TraceStoreError(f"the tag or note for run {run_id} was not written: {failed[0].error}")


def missing_run(store: Any, run_id: str) -> str:
    """The message for a run id that is not (or no longer) in the store."""
    return (f"no run {run_id!r} in the trace store {store.path} (it may have been deleted); "
            "refresh the list to see the runs that exist")


def _present(items: list[Any] | None) -> list[Any]:
    return [x for x in (items or []) if x is not None]


def _tags(con: Any, run_ids: list[str]) -> dict[str, list[str]]:
    if not run_ids:
        return {}
    found = con.execute("SELECT run_id, tags FROM run_tag_list WHERE list_contains($ids, run_id)",
                        {"ids": run_ids}).fetchall()
    return {run_id: list(tags) for run_id, tags in found}


def plain(value: Any) -> Any:
    """A JSON-safe value: times as ISO text, NaN as None."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
