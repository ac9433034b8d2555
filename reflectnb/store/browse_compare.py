"""The queries behind comparing two runs in the run browser: both summaries, entropy curves, item outcomes.

Contract
--------
* :func:`compare_runs` reads two runs through one read-only connection and returns
  plain JSON-able values: each run's header (as :func:`~reflectnb.store.browse.run_header`),
  its evaluation outcome when it is an evaluation item, the per-token entropy of its
  last generation (first batch row) as two lists of numbers, and — when both runs are
  evaluation items of *different* evaluations or methods — the outcome of every item of
  the two side by side, items where they disagree first.
* Curves longer than :data:`MAX_POINTS` tokens are averaged into that many buckets, so
  the message stays small whatever the generation's length; at most :data:`MAX_ITEMS`
  items are sent (``items_total`` says how many there are).
* Run ids are bound as parameters; a run that is not (or no longer) in the store raises
  :class:`~reflectnb.errors.OptionError` with :func:`~reflectnb.store.browse.missing_run`'s text.

Non-goals: word diffs (the widget layer has :mod:`reflectnb.strategies.diff`), comparing
more than two runs, aligning tokens across runs.
"""

from __future__ import annotations

import json
from typing import Any

from reflectnb.errors import OptionError
from reflectnb.store.browse import header_from, missing_run, plain, reading

MAX_POINTS = 1000
MAX_ITEMS = 500
_SIDE = ("item_id", "predicted", "correct", "status", "run_id")

_ITEMS = f"""
WITH latest AS (
    SELECT kind, json_extract_string(params, '$.eval_id') AS eval_id, run_id,
           json_extract_string(result, '$.eval.item_id') AS item_id,
           json_extract_string(result, '$.eval.gold') AS gold,
           json_extract_string(result, '$.eval.predicted') AS predicted,
           CAST(json_extract(result, '$.eval.correct') AS BOOLEAN) AS correct,
           json_extract_string(result, '$.eval.status') AS status
    FROM runs WHERE status = 'completed' AND json_extract_string(result, '$.eval.item_id') IS NOT NULL
      AND ((kind = $ka AND json_extract_string(params, '$.eval_id') = $ea)
        OR (kind = $kb AND json_extract_string(params, '$.eval_id') = $eb))
    QUALIFY row_number() OVER (PARTITION BY kind, eval_id, item_id ORDER BY ended_at DESC, run_id) = 1),
a AS (SELECT * FROM latest WHERE kind = $ka AND eval_id = $ea),
b AS (SELECT * FROM latest WHERE kind = $kb AND eval_id = $eb)
SELECT coalesce(a.item_id, b.item_id) AS item_id, coalesce(a.gold, b.gold) AS gold,
       {", ".join(f"a.{c} AS a_{c}" for c in _SIDE[1:])}, {", ".join(f"b.{c} AS b_{c}" for c in _SIDE[1:])},
       a.correct IS DISTINCT FROM b.correct AS differs, count(*) OVER () AS total
FROM a FULL OUTER JOIN b ON a.item_id = b.item_id
ORDER BY differs DESC, item_id LIMIT {MAX_ITEMS}"""


def compare_runs(store: Any, run_a: str, run_b: str) -> dict[str, Any]:
    """Two runs side by side: ``{"runs": [a, b], "entropy": [curve_a, curve_b], "items": [...], ...}``.

    Examples
    --------
    >>> data = compare_runs(open_store(), first_id, second_id)   # doctest: +SKIP
    >>> data["runs"][0]["final_answer"], data["entropy"][1]["mean"]   # doctest: +SKIP
    """
    with reading(store) as con:
        headers = [header_from(con, run_id) for run_id in (run_a, run_b)]
        for run_id, header in zip((run_a, run_b), headers):
            if header is None:
                raise OptionError(missing_run(store, run_id))
        curves = [entropy_curve(con, run_id) for run_id in (run_a, run_b)]
        items, total = _items(con, headers)
    for header in headers:
        header["outcome"] = eval_outcome(header.pop("result", None))
    return {"runs": headers, "entropy": curves, "items": items, "items_total": total,
            "summary": _summary(items) if items else None}


def entropy_curve(con: Any, run_id: str) -> dict[str, Any]:
    """Per-token entropy of the run's last generation: ``{"positions", "entropy", "tokens", "mean"}``.

    ``entropy`` holds None where a backend gave none (a scripted model, a server without logprobs).
    """
    rows = con.execute("""SELECT position, entropy FROM tokens WHERE run_id = $id
        AND gen_index = (SELECT max(gen_index) FROM tokens WHERE run_id = $id)
        QUALIFY row = min(row) OVER () ORDER BY position""", {"id": run_id}).fetchall()
    known = [plain(e) for _, e in rows if plain(e) is not None]
    positions, values = _buckets([p for p, _ in rows], [plain(e) for _, e in rows])
    return {"positions": positions, "entropy": values, "tokens": len(rows),
            "mean": sum(known) / len(known) if known else None}


def _buckets(positions: list[int], values: list[float | None]) -> tuple[list[float], list[float | None]]:
    """At most MAX_POINTS points: consecutive tokens averaged (None where a bucket has no value)."""
    if len(positions) <= MAX_POINTS:
        return [float(p) for p in positions], values
    size = len(positions) / MAX_POINTS
    xs: list[float] = []
    ys: list[float | None] = []
    for i in range(MAX_POINTS):
        lo, hi = int(i * size), int((i + 1) * size)
        known = [v for v in values[lo:hi] if v is not None]
        xs.append(sum(positions[lo:hi]) / (hi - lo))
        ys.append(sum(known) / len(known) if known else None)
    return xs, ys


def eval_outcome(result: Any) -> dict[str, Any] | None:
    """The evaluation row stored under ``result.eval`` (None for a run that is not an evaluation item)."""
    try:
        data = json.loads(result) if isinstance(result, str) else result
    except ValueError:
        return None
    item = data.get("eval") if isinstance(data, dict) else None
    return item if isinstance(item, dict) else None


def _items(con: Any, headers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Every item of the two runs' evaluations side by side (none unless both are items of different groups)."""
    groups = [(h["kind"], h.get("eval_id")) for h in headers]
    if any(eval_id is None for _, eval_id in groups) or groups[0] == groups[1]:
        return [], 0
    (ka, ea), (kb, eb) = groups
    cursor = con.execute(_ITEMS, {"ka": ka, "ea": ea, "kb": kb, "eb": eb})
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, map(plain, values))) for values in cursor.fetchall()]
    total = rows[0].pop("total") if rows else 0
    for row in rows[1:]:
        row.pop("total")
    return rows, int(total)


def _summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Correct counts per side over the items sent, and how many outcomes differ."""
    return {side: {"items": sum(r[f"{side}_run_id"] is not None for r in items),
                   "correct": sum(bool(r[f"{side}_correct"]) for r in items)} for side in ("a", "b")
            } | {"differs": sum(bool(r["differs"]) for r in items)}
