"""Tree searches traced into a real DuckDB file come back from SQL as the very same tree."""

from __future__ import annotations

import math

import pytest

import reflectnb
import reflectnb.store as traces
from reflectnb.strategies.tree import TreeResult
from reflectnb.strategies.tree.result import node_from_row, plain_row
from tests.test_tree_search import Toy, toy_backend


def verify(state: str) -> float:
    return 1.0 if "Answer: B" in state else (0.0 if "c" in state else 0.7)


SEARCHES = {"bfs": {"depth": 2, "beam": 2}, "dfs": {"depth": 3}, "mcts": {"iterations": 6, "branch": 2}}


@pytest.mark.parametrize("method", list(SEARCHES))
def test_a_traced_search_rebuilt_from_sql_rows_equals_the_tree_in_memory(method, tmp_path, monkeypatch):
    db = tmp_path / "traces.duckdb"
    monkeypatch.setenv("REFLECTNB_TRACES", str(db))
    result = reflectnb.tree(Toy(), model=toy_backend(), method=method, verifier=verify, **SEARCHES[method])
    rows = traces.sql("SELECT * FROM nodes WHERE run_id = $id ORDER BY node_id", {"id": result.run_id}, path=db)
    assert len(rows) == len(result.nodes) and rows["prompt"].isna().iloc[0]  # the root: SQL NULLs
    rebuilt = TreeResult.rebuild_from_rows(rows.to_dict("records"), method=method)
    assert rebuilt.nodes == result.nodes  # every field: value, visits, status, prompt, attributes …
    assert rebuilt.best_path == result.best_path and rebuilt.answer == result.answer
    root = rebuilt.nodes[0]
    assert root.prompt is None and root.parent is None and (method == "mcts") == (root.value is not None)
    assert all(type(n.node_id) is int and (n.value is None or math.isfinite(n.value)) for n in rebuilt.nodes)


def test_sql_nulls_in_any_pandas_form_become_none():
    pd = pytest.importorskip("pandas")
    row = {"node_id": 3, "parent": pd.NA, "depth": 1, "text": "x", "value": float("nan"), "prompt": pd.NaT,
           "attributes": None, "recorded_at": pd.NaT}
    node = node_from_row(row)
    assert (node.parent, node.value, node.prompt, node.attributes) == (None, None, None, {})
    import numpy as np

    assert plain_row({"a": np.int64(2), "b": np.float64("nan"), "c": "s"}) == {"a": 2, "b": None, "c": "s"}
