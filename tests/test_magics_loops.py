"""%%reflect, %%critique, %%debate and %reflect_sql end to end in a real InteractiveShell.

Scripted models make the loops deterministic; one test per loop runs the real
embedded model. Every run must land in the (real, temporary) trace store.
"""

from __future__ import annotations

import pytest
from magic_shell import clean_shell

from reflectnb.store import open_store


@pytest.fixture()
def ip(trace_file):
    with clean_shell() as shell:  # no variable or %config leaks into the next test
        yield shell


def runs(trace_file):
    return open_store(str(trace_file)).sql("SELECT run_id, kind, model, status, stop_reason, final_answer FROM runs "
                                           "ORDER BY started_at")


def test_reflect_magic_runs_the_loop_stores_the_result_and_traces_it(ip, trace_file):
    ip.run_cell_magic("reflect", "-m 'scripted:A first draft|Looks good. STOP' --no-stream -o res",
                      "Write a haiku.")
    res = ip.user_ns["res"]
    assert (res.answer, res.stop_reason) == ("A first draft", "feedback_stop")
    row = runs(trace_file).iloc[-1]
    assert res.run_id  # the stored row must name the run the magic returned
    assert (row.run_id, row.kind, row.status, row.stop_reason) == (res.run_id, "reflect", "completed", "feedback_stop")


def test_cell_variables_are_filled_in_before_the_loop_sees_the_task(ip):
    ip.user_ns["topic"] = "rain"
    ip.run_cell_magic("reflect", "-m 'scripted:draft|STOP' --no-stream -o res", "A haiku about {topic} {{literally}}")
    assert ip.user_ns["res"].steps[0].generation.prompt[-1].content == "A haiku about rain {literally}"


def test_model_may_name_a_python_variable_holding_a_loaded_model(ip, trace_file):
    from reflectnb.backends.scripted import ScriptedBackend

    ip.user_ns["bot"] = ScriptedBackend(["from a variable", "STOP"])
    ip.run_cell_magic("reflect", "-m bot --no-stream -o res", "x")
    assert ip.user_ns["res"].answer == "from a variable"
    ip.user_ns["bot"] = ScriptedBackend(lambda prompt, i: "from a variable")
    ip.run_cell_magic("tree", "--method bfs --branch 1 --depth 1 -m bot --no-stream -o res", "x")
    assert "from a variable" in [n.text for n in ip.user_ns["res"].nodes]


def test_a_tree_option_the_method_does_not_take_is_a_usage_error_naming_what_it_takes(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="method 'best_of_n' does not take branch; it takes: n, "):
        ip.run_cell_magic("tree", "--method best_of_n --branch 2 -m 'scripted:a' --no-stream", "x")


def test_no_trace_keeps_the_run_out_of_the_store(ip, trace_file):
    ip.run_cell_magic("reflect", "-m 'scripted:d|STOP' --no-stream --no-trace -o res", "x")
    assert ip.user_ns["res"].run_id is None
    assert not trace_file.exists() or len(runs(trace_file)) == 0


def test_debate_magic_batches_agents_and_votes(ip, trace_file):
    ip.run_cell_magic("debate", "-m 'scripted:7|7|8|7|7|7' --agents 3 --rounds 2 --no-stream -o res", "Is 7 prime?")
    res = ip.user_ns["res"]
    assert res.answer == "7" and res.votes == {"7": 3}
    assert runs(trace_file).iloc[-1].kind == "debate"


def test_reflect_sql_returns_a_dataframe_bound_to_python_variables(ip, trace_file):
    ip.run_cell_magic("reflect", "-m 'scripted:draft|STOP' --no-stream -o res", "x")
    ip.user_ns["kind"] = "reflect'; DROP TABLE runs; --"
    df = ip.run_line_magic("reflect_sql", "SELECT count(*) AS n FROM runs WHERE kind = $kind")
    assert int(df.n[0]) == 0
    assert len(runs(trace_file)) == 1  # the hostile string was a value, not SQL


def test_reflect_sql_refuses_changes_without_write(ip, trace_file):
    ip.run_cell_magic("reflect", "-m 'scripted:draft|STOP' --no-stream -o res", "x")
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--write"):
        ip.run_line_magic("reflect_sql", "DELETE FROM runs")
    assert len(runs(trace_file)) == 1


@pytest.mark.model
@pytest.mark.parametrize("magic, line, cell", [  # a few tokens per step: the wiring, not the wisdom
    ("reflect", "--rounds 1 --max-tokens 8", "Write one sentence about the moon."),
    ("critique", "--rounds 1 --max-tokens 8", "What is 3 + 4?"),
    ("debate", "--agents 2 --rounds 2 --max-tokens 6", "What is 2 + 2?"),
])
def test_each_loop_magic_runs_on_the_real_embedded_model_and_is_traced(ip, trace_file, magic, line, cell):
    ip.run_cell_magic(magic, line + " --no-stream -o res", cell)
    res = ip.user_ns["res"]
    assert res.run_id and res.steps
    store = open_store(str(trace_file))
    counts = store.sql("SELECT (SELECT count(*) FROM steps WHERE run_id = $r) AS steps, "
                       "(SELECT count(*) FROM tokens WHERE run_id = $r) AS tokens", {"r": res.run_id})
    assert int(counts.steps[0]) == len(res.steps)
    assert int(counts.tokens[0]) == sum(len(s.generation.tokens) for s in res.steps if s.generation)
