"""compare() end to end on scripted models: batching, bad input, the trace store (a real DuckDB file), resuming."""

from __future__ import annotations

import json

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import BackendError, OptionError
from reflectnb.evaluate import compare

ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(8)]


def doubler(prompt: str, index: int) -> str:
    """Answers 'What is i + i?' right except for i = 3 (wrong) and i = 5 (no answer)."""
    i = int(prompt.split("What is ")[1].split(" ")[0])
    return {3: "The answer is 7", 5: "I cannot say."}.get(i, f"The answer is {2 * i}")


def store_sql(query: str, params=None):
    from reflectnb.store import open_store

    return open_store().sql(query, params)


def test_eight_baseline_items_go_to_the_model_in_one_call(trace_file):
    model = ScriptedBackend(doubler)
    result = compare(ROWS, ["baseline"], model=model, batch_size=8, progress=False, trace=False)
    assert [len(c.prompts) for c in model.calls] == [8]
    assert result.summary().iloc[0][["n", "correct", "unparsed"]].tolist() == [8, 6, 1]


def test_batch_size_one_runs_items_one_by_one():
    model = ScriptedBackend(doubler)
    compare(ROWS, ["baseline"], model=model, batch_size=1, progress=False, trace=False)
    assert [len(c.prompts) for c in model.calls] == [1] * 8


def test_an_unparsable_answer_is_counted_and_shown():
    result = compare(ROWS, ["baseline"], model=ScriptedBackend(doubler), progress=False, trace=False)
    row = next(r for r in result.rows if r["item_id"] == "q5")
    assert (row["status"], row["predicted"], row["correct"], row["final_text"]) == \
        ("unparsed", None, False, "I cannot say.")
    assert len(result.rows) == 8


def test_a_checker_that_raises_is_recorded_per_item(trace_file):
    def fussy(predicted: str, gold: str) -> bool:
        if gold == "8":
            raise ZeroDivisionError("cannot check eight")
        return predicted == gold

    result = compare(ROWS, ["baseline"], model=ScriptedBackend(doubler), checker=fussy, progress=False)
    row = next(r for r in result.rows if r["item_id"] == "q4")
    assert (row["status"], row["correct"], row["error"]) == ("checker_error", False, "ZeroDivisionError: cannot check eight")
    assert result.summary().iloc[0]["checker_errors"] == 1
    scores = store_sql("SELECT s.label, s.explanation FROM scores s JOIN runs r USING (run_id) WHERE s.name = 'correct' "
                       "AND json_extract_string(r.params, '$.item_id') = 'q4'")
    assert scores.values.tolist() == [["checker_error", "ZeroDivisionError: cannot check eight"]]


def test_an_extraction_function_that_raises_is_recorded_per_item_and_the_evaluation_goes_on(trace_file):
    def picky(text: str) -> str:
        if "14" in text:
            raise ValueError("no fourteens")
        return text.split()[-1]

    result = compare(ROWS, ["baseline", "reflect(rounds=1)"], model=ScriptedBackend(doubler), extract=picky,
                     progress=False)
    for method in ("baseline", "reflect(rounds=1)"):
        row = next(r for r in result.rows_of(method) if r["item_id"] == "q7")
        assert (row["status"], row["predicted"], row["correct"], row["error"]) == \
            ("checker_error", None, False, "extract picky raised ValueError: no fourteens")
    summary = result.summary().set_index("method")
    assert summary["n"].tolist() == [8, 8] and summary["checker_errors"].tolist() == [1, 1]
    assert summary["correct"].tolist() == [5, 5]  # all but q3 (wrong), q5 ("say") and q7 (the error)
    labels = store_sql("SELECT s.label FROM scores s JOIN runs r USING (run_id) WHERE s.name = 'correct' "
                       "AND json_extract_string(r.params, '$.item_id') = 'q7'")
    assert labels["label"].tolist() == ["checker_error"] * 2


def test_an_empty_task_set_is_refused():
    with pytest.raises(OptionError, match="has no items"):
        compare([], ["baseline"], model=ScriptedBackend(doubler), trace=False)


def test_an_unknown_method_is_refused_before_the_model_loads():
    with pytest.raises(OptionError, match="unknown method 'reflexion'; known methods: baseline, reflect, critique"):
        compare(ROWS, ["baseline", "reflexion"], model="no-such-model")


@pytest.mark.parametrize("options, match", [({"batch_size": 0}, "`batch_size` must be a positive integer"),
                                            ({"n": -1}, "`n` must be a positive integer"),
                                            ({"confidence": 95}, "`confidence` must be between 0 and 1")])
def test_bad_numbers_are_refused(options, match):
    with pytest.raises(OptionError, match=match):
        compare(ROWS, ["baseline"], model=ScriptedBackend(doubler), trace=False, **options)


def test_every_item_and_method_is_a_run_in_the_trace_store(trace_file):
    result = compare(ROWS[:4], ["baseline", "reflect(rounds=1)"], model=ScriptedBackend(doubler), progress=False,
                     seed=11)
    runs = store_sql("SELECT kind, status, json_extract_string(params, '$.eval_id') AS eval_id, "
                     "json_extract_string(params, '$.item_id') AS item_id, "
                     "json_extract(params, '$.seed')::INT AS seed, steps FROM runs ORDER BY kind, item_id")
    assert runs["kind"].tolist() == ["eval:baseline"] * 4 + ["eval:reflect(rounds=1)"] * 4
    assert set(runs["status"]) == {"completed"} and set(runs["eval_id"]) == {result.eval_id}
    assert runs["item_id"].tolist() == ["q0", "q1", "q2", "q3"] * 2 and set(runs["seed"]) == {11}
    assert runs["steps"].tolist() == [1] * 4 + [3] * 4  # draft, feedback, refine
    stored = store_sql("SELECT result FROM runs WHERE run_id = $id", {"id": result.rows[3]["run_id"]})
    assert json.loads(stored["result"][0])["eval"]["predicted"] == "7"
    assert trace_file.exists()


def test_a_rerun_reads_finished_items_back_instead_of_generating(trace_file):
    first = compare(ROWS, ["baseline"], model=ScriptedBackend(doubler), progress=False)
    model = ScriptedBackend(doubler)
    again = compare(ROWS, ["baseline", "self_consistency(samples=2)"], model=model, progress=False)
    assert again.eval_id == first.eval_id
    assert again.rows_of("baseline") == first.rows
    assert all(len(c.prompts) == 16 for c in model.calls)  # only self-consistency generated: 8 items x 2
    assert store_sql("SELECT count(*) AS n FROM runs")["n"][0] == 16


def test_resume_false_starts_a_fresh_evaluation(trace_file):
    first = compare(ROWS[:2], ["baseline"], model=ScriptedBackend(doubler), progress=False)
    model = ScriptedBackend(doubler)
    fresh = compare(ROWS[:2], ["baseline"], model=model, progress=False, resume=False)
    assert fresh.eval_id != first.eval_id and len(model.calls) == 1


def test_no_trace_writes_nothing(trace_file):
    compare(ROWS[:2], ["baseline"], model=ScriptedBackend(doubler), progress=False, trace=False)
    assert not trace_file.exists()


def test_a_backend_error_keeps_the_finished_batches_and_a_rerun_completes(trace_file):
    calls = {"n": 0}

    def flaky(prompt: str, index: int) -> str:
        calls["n"] += 1
        if calls["n"] == 5:
            raise BackendError("server went away")
        return doubler(prompt, index)

    with pytest.raises(BackendError, match="server went away"):
        compare(ROWS, ["baseline"], model=ScriptedBackend(flaky), batch_size=4, progress=False)
    assert store_sql("SELECT count(*) AS n FROM runs WHERE status = 'completed'")["n"][0] == 4
    model = ScriptedBackend(doubler)
    result = compare(ROWS, ["baseline"], model=model, batch_size=4, progress=False)
    assert len(result.rows) == 8 and [len(c.prompts) for c in model.calls] == [4]


def test_the_progress_bar_counts_items_including_resumed_ones(trace_file, capsys):
    compare(ROWS[:3], ["baseline"], model=ScriptedBackend(doubler), batch_size=2)
    err = capsys.readouterr().err
    assert "eval baseline" in err and "3/3" in err
