"""Charts of an evaluation: pure functions from the result tables to altair charts.

Contract
--------
Each function takes a DataFrame made by :class:`~reflectnb.evaluate.result.EvalResult`
(``summary()`` or ``outcome_matrix()``) and returns an ``alt.Chart`` (or a
layer of them) with the data embedded; nothing is displayed or saved. Test
them through ``chart.to_dict()``.

* :func:`accuracy_chart` — accuracy per method with its Wilson interval (error bars);
* :func:`tokens_accuracy_chart` — accuracy against tokens per item, one point per method;
* :func:`outcome_chart` — the outcome matrix as stacked bars per method and round.

Non-goals: themes, saving files.
"""

from __future__ import annotations

from typing import Any

from reflectnb.evaluate.stats import TRANSITIONS

_COLOURS = {"wrong→right": "#2ca02c", "right→wrong": "#d62728", "right→right": "#9ecae1", "wrong→wrong": "#bdbdbd"}


def accuracy_chart(summary: Any, title: str = "Accuracy (Wilson 95% interval)") -> Any:
    """Bars of accuracy per method with error bars from ``ci_low`` to ``ci_high``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"method": ["baseline"], "accuracy": [0.7], "ci_low": [0.4], "ci_high": [0.9], "n": [10]})
    >>> accuracy_chart(df).to_dict()["layer"][0]["mark"]["type"]
    'bar'
    """
    import altair as alt

    data = summary[["method", "accuracy", "ci_low", "ci_high", "n"]]
    base = alt.Chart(data).encode(y=alt.Y("method:N", sort=None, title=None))
    bars = base.mark_bar().encode(x=alt.X("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy"),
                                  tooltip=["method", alt.Tooltip("accuracy:Q", format=".3f"), "n"])
    errors = base.mark_errorbar(ticks=True).encode(x=alt.X("ci_low:Q", title="accuracy"), x2="ci_high:Q")
    return alt.layer(bars, errors).properties(title=title)


def tokens_accuracy_chart(summary: Any, title: str = "Accuracy vs tokens per item") -> Any:
    """One point per method: tokens per item (x) against accuracy (y), with its interval."""
    import altair as alt

    data = summary[["method", "accuracy", "ci_low", "ci_high", "tokens_per_item", "seconds_per_item"]]
    base = alt.Chart(data).encode(x=alt.X("tokens_per_item:Q", title="tokens per item"))
    points = base.mark_point(filled=True, size=80).encode(
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy"), color="method:N",
        tooltip=["method", alt.Tooltip("accuracy:Q", format=".3f"), alt.Tooltip("tokens_per_item:Q", format=".1f"),
                 alt.Tooltip("seconds_per_item:Q", format=".2f")])
    errors = base.mark_rule().encode(y="ci_low:Q", y2="ci_high:Q", color="method:N")
    return alt.layer(errors, points).properties(title=title)


def outcome_chart(matrix: Any, title: str = "What reflection did to answers") -> Any:
    """Stacked bars per (method, round): how many items went wrong→right, right→wrong, …"""
    import altair as alt

    long = matrix.melt(id_vars=["method", "round", "items"], value_vars=list(TRANSITIONS),
                       var_name="transition", value_name="count")
    scale = alt.Scale(domain=list(_COLOURS), range=list(_COLOURS.values()))
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("count:Q", stack="zero", title="items"), y=alt.Y("round:N", sort=None, title="round"),
        color=alt.Color("transition:N", scale=scale), row=alt.Row("method:N", title=None),
        tooltip=["method", "round", "transition", "count", "items"]).properties(title=title)
