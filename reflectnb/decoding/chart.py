"""Altair chart of a schedule δ(t), with realised reflection-token positions overlaid.

Contract: a pure function from a schedule (and positions) to an ``alt.Chart``;
altair and pandas are imported here only, so importing the schedules stays light.
At most ~1,000 sampled positions plus every realised one (altair inlines data).

Non-goals: charts of traces (``reflectnb.charts``).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

MAX_POINTS = 1000


def sample_positions(max_position: int, realised: Iterable[int] = ()) -> np.ndarray:
    """Integer positions 0..max_position (every one when few, else evenly spaced) plus ``realised``."""
    step = max(1, int(np.ceil((max_position + 1) / MAX_POINTS)))
    grid = np.arange(0, max_position + 1, step)
    return np.unique(np.concatenate([grid, [max_position], np.asarray(list(realised), dtype=np.int64)]))


def _value(schedule: Any, positions: np.ndarray, realised: list[int]) -> np.ndarray:
    if getattr(schedule, "kind", "") == "tip" and realised:
        return schedule.value(positions, anchors=realised)  # paper mode re-anchors at switches
    return schedule.value(positions)


def schedule_chart(schedule: Any, max_position: int, realised: Iterable[int] | None = None):
    """Line of δ(t) for t in [0, max_position]; realised positions as red rules and points.

    Parameters
    ----------
    schedule : a :class:`~reflectnb.decoding.schedules.Schedule`
    max_position : int
        Last position drawn (inclusive).
    realised : iterable of int, optional
        Generated positions where a reflection token was emitted.

    Returns
    -------
    altair.Chart (a LayerChart when ``realised`` is given)

    Examples
    --------
    >>> schedule_chart(Cyclic(5, 1200), 2400, [300]).to_dict()["layer"][0]["mark"]  # doctest: +SKIP
    """
    import altair as alt
    import pandas as pd

    realised = sorted(int(p) for p in (realised or ()))
    positions = sample_positions(int(max_position), realised)
    curve = pd.DataFrame({"position": positions, "delta": _value(schedule, positions, realised)})
    line = alt.Chart(curve, title=repr(schedule)).mark_line(interpolate="linear").encode(
        x=alt.X("position:Q", title="generated position t"),
        y=alt.Y("delta:Q", title="δ(t) added to reflection logits"),
        tooltip=["position:Q", "delta:Q"])
    if not realised:
        return line
    hits = pd.DataFrame({"position": realised, "delta": _value(schedule, np.asarray(realised), realised)})
    rules = alt.Chart(hits).mark_rule(color="firebrick", opacity=0.35).encode(x="position:Q")
    points = alt.Chart(hits).mark_point(color="firebrick", filled=True).encode(
        x="position:Q", y="delta:Q", tooltip=["position:Q", "delta:Q"])
    return alt.layer(line, rules, points)
