"""EvalResult views on hand-built rows, checked against hand-computed numbers; charts through to_dict()."""

from __future__ import annotations

import pytest

from reflectnb.errors import OptionError
from reflectnb.evaluate.charts import accuracy_chart, outcome_chart, tokens_accuracy_chart
from reflectnb.evaluate.result import EvalResult


def row(method, item, correct_per_round, answers=None, rounds=None, status="ok", tokens=10, seconds=0.5):
    answers = answers or [str(i) for i in range(len(correct_per_round))]
    return {"item_id": item, "method": method, "predicted": answers[-1], "gold": "g", "correct": correct_per_round[-1],
            "score": float(correct_per_round[-1]), "status": status, "error": None,
            "rounds": len(correct_per_round) - 1 if rounds is None else rounds, "round_answers": answers,
            "round_correct": correct_per_round, "tokens": tokens, "seconds": seconds, "gen_seconds": seconds,
            "stop_reason": "", "final_text": "", "seed": 0, "run_id": None}


T, F = True, False
# 10 items. baseline: 7 right. reflect (2 rounds): round answers per item below.
BASELINE = [row("baseline", i, [c], tokens=20, seconds=1.0) for i, c in enumerate([T] * 7 + [F] * 3)]
REFLECT_ROUNDS = [
    ([T, T, T], ["4", "4", "4"], 2),      # confirmatory ×2
    ([T, F, F], ["4", "5", "5"], 2),      # other (right→wrong), confirmatory (same wrong)
    ([F, T, T], ["5", "4", "4"], 2),      # corrective, confirmatory
    ([F, F, T], ["5", "6", "4"], 2),      # other (different wrong), corrective
    ([F, F, F], ["5", "5", "5"], 2),      # confirmatory ×2
    ([T, T], ["4", "4"], 1),              # stopped after round 1: confirmatory ×1; round 2 carries over
    ([T, T, T], ["4", "4", "4"], 2),      # confirmatory ×2
    ([F, T, F], ["5", "4", "7"], 2),      # corrective, other
    ([T, T, T], ["4", "4", "4"], 2),      # confirmatory ×2
    ([F, F, F], ["5", "6", "7"], 2),      # other ×2
]
REFLECT = [row("reflect", i, c, answers=a, rounds=r, tokens=60, seconds=3.0)
           for i, (c, a, r) in enumerate(REFLECT_ROUNDS)]
RESULT = EvalResult("eval-test", "arith", "scripted", ["baseline", "reflect"], BASELINE + REFLECT)


def test_summary_accuracy_with_wilson_interval():
    summary = RESULT.summary().set_index("method")
    base = summary.loc["baseline"]
    assert (base["n"], base["correct"], base["accuracy"]) == (10, 7, 0.7)
    assert (round(base["ci_low"], 4), round(base["ci_high"], 4)) == (0.3968, 0.8922)
    assert summary.loc["reflect", "correct"] == 6  # final answers right: items 0, 2, 3, 5, 6, 8


def test_summary_tokens_and_time_per_item():
    summary = RESULT.summary().set_index("method")
    assert summary.loc["baseline", "tokens_per_item"] == 20 and summary.loc["reflect", "tokens_per_item"] == 60
    assert summary.loc["baseline", "items_per_minute"] == 60 and summary.loc["reflect", "items_per_minute"] == 20


def test_outcome_matrix_per_round_by_hand():
    matrix = RESULT.outcome_matrix().set_index("round")
    cols = ["wrong→right", "right→wrong", "right→right", "wrong→wrong"]
    # round 1 (answer 0 → 1): W→R items 2, 7; R→W item 1; R→R items 0, 5, 6, 8; W→W items 3, 4, 9
    assert matrix.loc["1", cols].tolist() == [2, 1, 4, 3]
    # round 2 (1 → 2; item 5 carries its answer): W→R item 3; R→W item 7; R→R 0, 2, 5, 6, 8; W→W 1, 4, 9
    assert matrix.loc["2", cols].tolist() == [1, 1, 5, 3]
    # first → final: W→R items 2, 3; R→W item 1; R→R 0, 5, 6, 8; W→W 4, 7, 9
    assert matrix.loc["first→final", cols].tolist() == [2, 1, 4, 3]


def test_every_outcome_matrix_row_sums_to_the_item_count():
    matrix = RESULT.outcome_matrix()
    cols = ["wrong→right", "right→wrong", "right→right", "wrong→wrong"]
    assert (matrix[cols].sum(axis=1) == 10).all() and (matrix["items"] == 10).all()


def test_methods_without_reflection_rounds_have_no_outcome_rows():
    assert RESULT.outcome_matrix("baseline").empty


def test_reflections_are_classified_as_in_first_try_matters():
    table = RESULT.reflections().set_index("method")
    # 19 reflections run (item 5 ran one): confirmatory 11, corrective 3, other 5
    assert table.loc["reflect", ["reflections", "confirmatory", "corrective", "other"]].tolist() == [19, 11, 3, 5]
    assert table.loc["reflect", "confirmatory_rate"] == pytest.approx(11 / 19)
    summary = RESULT.summary().set_index("method")
    assert summary.loc["reflect", "corrective_rate"] == pytest.approx(3 / 19)


def test_paired_comparison_counts_discordant_items_and_tests_them():
    paired = RESULT.paired(resamples=500).iloc[0]
    # baseline right on 0-6, reflect right on 0, 2, 3, 5, 6, 8:
    # only baseline right: 1, 4; only reflect right: 8
    assert (paired["a"], paired["b"], paired["only_a_right"], paired["only_b_right"]) == ("baseline", "reflect", 2, 1)
    assert paired["mcnemar_p"] == pytest.approx(1.0)
    assert paired["difference"] == pytest.approx(0.1)
    assert paired["diff_ci_low"] <= 0.1 <= paired["diff_ci_high"]


def test_unparsed_and_checker_errors_are_counted_not_dropped():
    rows = [row("baseline", 0, [F], status="unparsed"), row("baseline", 1, [F], status="checker_error"),
            row("baseline", 2, [T])]
    summary = EvalResult("e", "t", "m", ["baseline"], rows).summary().iloc[0]
    assert (summary["n"], summary["correct"], summary["unparsed"], summary["checker_errors"]) == (3, 1, 1, 1)


def test_asking_for_a_method_that_was_not_run():
    with pytest.raises(OptionError, match=r"no method 'debate' in this evaluation; it has \['baseline', 'reflect'\]"):
        RESULT.outcome_matrix("debate")


def test_accuracy_chart_has_bars_and_wilson_error_bars():
    spec = accuracy_chart(RESULT.summary()).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["bar", "errorbar"]
    assert spec["layer"][1]["encoding"]["x2"]["field"] == "ci_high"
    values = next(iter(spec["datasets"].values()))
    assert [(v["method"], v["accuracy"]) for v in values] == [("baseline", 0.7), ("reflect", 0.6)]


def test_tokens_vs_accuracy_scatter_puts_tokens_on_x():
    spec = tokens_accuracy_chart(RESULT.summary()).to_dict()
    points = spec["layer"][1]
    assert points["encoding"]["x"]["field"] == "tokens_per_item" and points["encoding"]["y"]["field"] == "accuracy"


def test_outcome_chart_stacks_the_four_transitions_per_round():
    spec = outcome_chart(RESULT.outcome_matrix()).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert {v["transition"] for v in values} == {"wrong→right", "right→wrong", "right→right", "wrong→wrong"}
    assert sum(v["count"] for v in values if v["round"] == "1") == 10
    assert spec["encoding"]["color"]["scale"]["range"][0] == "#2ca02c"


def test_charts_from_the_result_object():
    assert RESULT.charts.outcomes().to_dict()["encoding"]["row"]["field"] == "method"
    assert RESULT.charts.accuracy().to_dict()["title"] == "Accuracy (Wilson 95% interval)"
    assert RESULT.charts.tokens_vs_accuracy().to_dict()["title"] == "Accuracy vs tokens per item"


def test_html_view_escapes_method_names():
    rows = [row("baseline", 0, [T])]
    result = EvalResult("e<1>", "t", "m", ["baseline"], rows)
    assert "e&lt;1&gt;" in result._repr_html_() and "<1>" not in result._repr_html_()
