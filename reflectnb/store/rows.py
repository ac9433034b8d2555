"""Turning trace values into Arrow tables for DuckDB's bulk insert path.

Contract
--------
* :func:`tokens_table` builds one Arrow table from many :class:`TokenEvent`
  lists, column by column (never one INSERT per token; TRACES.md §3.1 measured
  ~1,000 rows/s for ``executemany`` against >1M rows/s for Arrow).
* :func:`table` builds a small Arrow table from row dicts for the other tables.
* :func:`to_json` always yields valid JSON (NaN/inf become null, unknown
  objects their ``str``), because a DuckDB ``JSON`` column rejects a whole
  batch on one malformed value.
* Strings that Arrow cannot encode (lone surrogates) are replaced, not dropped.

Non-goals: deciding what to record (the recorder) or when to write (the writer).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Iterable, Sequence

import pyarrow as pa

from reflectnb.trace import TokenEvent

TS = pa.timestamp("us", tz="UTC")
TOP = pa.list_(pa.struct([("text", pa.string()), ("logprob", pa.float64())]))

TYPES: dict[str, dict[str, pa.DataType]] = {
    "runs": {"run_id": pa.string(), "name": pa.string(), "kind": pa.string(), "model": pa.string(),
             "params": pa.string(), "status": pa.string(), "started_at": TS, "pid": pa.int32(),
             "host": pa.string(), "reflectnb_version": pa.string()},
    "steps": {"run_id": pa.string(), "step_index": pa.int32(), "kind": pa.string(), "role": pa.string(),
              "agent": pa.string(), "round": pa.int32(), "parent": pa.int32(), "text": pa.string(),
              "attributes": pa.string(), "created_at": TS},
    "generations": {"run_id": pa.string(), "gen_index": pa.int32(), "step_index": pa.int32(),
                    "row": pa.int32(), "model": pa.string(), "prompt": pa.string(), "text": pa.string(),
                    "prompt_tokens": pa.int32(), "completion_tokens": pa.int32(), "cached_tokens": pa.int32(),
                    "finish_reason": pa.string(), "seconds": pa.float64(), "params": pa.string(),
                    "created_at": TS},
    "node_events": {"run_id": pa.string(), "node_id": pa.int64(), "parent": pa.int64(), "depth": pa.int32(),
                    "text": pa.string(), "value": pa.float64(), "visits": pa.int64(), "status": pa.string(),
                    "iteration": pa.int32(), "prompt": pa.string(), "attributes": pa.string(),
                    "seq": pa.int64(), "recorded_at": TS},
    "scores": {"run_id": pa.string(), "score_index": pa.int32(), "name": pa.string(), "value": pa.float64(),
               "label": pa.string(), "explanation": pa.string(), "target_step": pa.int32(),
               "target_node": pa.int64(), "created_at": TS},
}
JSON_COLUMNS = {"params", "attributes", "prompt", "result"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def to_json(value: Any) -> str:
    """Valid JSON text for ``value`` (NaN → null, objects → ``str``).

    Examples
    --------
    >>> to_json({"a": float("nan"), "b": [1, 2]})
    '{"a": null, "b": [1, 2]}'
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def clean_text(text: Any) -> Any:
    """``text`` with lone surrogates replaced so Arrow can encode it."""
    if isinstance(text, str):
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def table(name: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """An Arrow table for ``rows`` of table ``name`` (columns as in :data:`TYPES`)."""
    types = TYPES[name]
    try:
        return pa.table({c: pa.array([r.get(c) for r in rows], t) for c, t in types.items()})
    except (UnicodeEncodeError, pa.ArrowException):
        return pa.table({c: pa.array([clean_text(r.get(c)) for r in rows], t) for c, t in types.items()})


def tokens_table(run_id: str, chunks: Iterable[tuple[int, int | None, Sequence[TokenEvent]]]) -> pa.Table:
    """One Arrow table for ``(gen_index, step_index, tokens)`` chunks of one run."""
    chunks = [c for c in chunks if c[2]]
    toks = [t for _, _, ts in chunks for t in ts]
    gen_idx = [g for g, _, ts in chunks for _ in range(len(ts))]
    step_idx = [s for _, s, ts in chunks for _ in range(len(ts))]
    try:
        text = pa.array([t.text for t in toks], pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        text = pa.array([clean_text(t.text) for t in toks], pa.string())
    top = None
    if any(t.top for t in toks):
        top = [None if not t.top else [{"text": clean_text(a), "logprob": b} for a, b in t.top] for t in toks]
    return pa.table({
        "run_id": pa.array([run_id] * len(toks), pa.string()),
        "gen_index": pa.array(gen_idx, pa.int32()), "step_index": pa.array(step_idx, pa.int32()),
        "row": pa.array([t.row for t in toks], pa.int32()),
        "position": pa.array([t.position for t in toks], pa.int32()),
        "token_id": pa.array([t.token_id for t in toks], pa.int64()), "text": text,
        "logprob": pa.array([t.logprob for t in toks], pa.float64()),
        "entropy": pa.array([t.entropy for t in toks], pa.float64()),
        "is_reflection": pa.array([t.is_reflection for t in toks], pa.bool_()),
        "schedule_value": pa.array([t.schedule_value for t in toks], pa.float64()),
        "intervention": pa.array([t.intervention for t in toks], pa.string()),
        "top": pa.array(top if top is not None else [None] * len(toks), TOP),
    })


def insert(con: Any, name: str, data: pa.Table) -> None:
    """Bulk-insert an Arrow table by column name (one statement for the whole batch)."""
    if data.num_rows == 0:
        return
    view = f"_reflectnb_batch_{name}"
    con.register(view, data)
    try:
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
    finally:
        con.unregister(view)
