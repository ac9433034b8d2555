"""The trace store: every run, step, generation, token, tree node and score, in DuckDB.

Public API::

    from reflectnb.store import open_store, sql
    store = open_store()                      # .reflectnb/traces.duckdb (REFLECTNB_TRACES)
    with store.run("reflect", "smollm2-135m", params) as run:   # a Recorder
        ...
    store.sql("SELECT * FROM run_summary")    # read-only unless write=True
    store.export_sft("sft.jsonl"); store.export_dpo("dpo.jsonl"); store.export_parquet("out/")

Tables: ``runs``, ``steps``, ``generations``, ``tokens``, ``node_events``,
``scores``; views: ``run_summary``, ``token_text``, ``reflection_usage``,
``nodes`` (latest state per tree node). See ``docs/traces.md``.

Layer 2b: imports duckdb, pyarrow and pandas; never torch.
"""

from __future__ import annotations

from reflectnb.store.core import TraceStore, open_store, sql
from reflectnb.store.queries import QueryError
from reflectnb.store.recorder import RunRecorder
from reflectnb.store.schema import SCHEMA_VERSION

__all__ = ["TraceStore", "RunRecorder", "QueryError", "open_store", "sql", "SCHEMA_VERSION"]
