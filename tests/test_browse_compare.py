"""Comparing two stored runs in the run browser, and the browser's bad input that needs a second process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.evaluate import compare
from reflectnb.store import open_store
from reflectnb.store.browse_compare import MAX_POINTS
from reflectnb.trace import Generation, Step, TokenEvent
from reflectnb.widgets import RunBrowser
from reflectnb.widgets.browser_compare import comparison_html

HOSTILE = "the dog sat on the <b onmouseover=alert(1)>mat</b>"
ITEMS = [{"id": "q1", "question": "What is 1 + 1?", "answer": "2"},
         {"id": "q2", "question": "What is 2 + 2?", "answer": "4"},
         {"id": "q3", "question": "What is 3 + 3?", "answer": "6"}]


def record(store, answer: str, entropies: list[float | None], task: str = "Where is the cat?") -> str:
    """One completed run whose last generation is ``answer``, one token per word, with these entropies."""
    words = answer.split(" ")
    tokens = [TokenEvent(row=0, position=i, token_id=i, text=(" " if i else "") + w, logprob=-0.5, entropy=e)
              for i, (w, e) in enumerate(zip(words, entropies))]
    with store.run("generate", "scripted", {}) as run:
        run.on_step(Step("draft", "first try", generation=Generation("first try", "scripted", task, tokens=[
            TokenEvent(row=0, position=0, token_id=0, text="first", entropy=9.0)])))
        run.on_step(Step("refine", answer, generation=Generation(answer, "scripted", task, tokens=tokens)))
        run.set_result(answer, "stop", task=task)
    return run.run_id


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """Two runs with tokens, and two evaluations (a: q1, q2; b: q1, q2, q3) that disagree on q1 and q2."""
    path = tmp_path_factory.mktemp("compare") / "traces.duckdb"
    store = open_store(path)
    runs = {"cat": record(store, "the cat sat on the mat", [0.5, 1.0, 0.25, None, 2.0, 0.75]),
            "dog": record(store, HOSTILE, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFLECTNB_TRACES", str(path))
        compare(ITEMS[:2], ["baseline"], model=ScriptedBackend(lambda p, i: "The answer is 2"), eval_id="ev-a",
                progress=False)
        compare(ITEMS, ["baseline"], model=ScriptedBackend(lambda p, i: "The answer is 4" if "2 + 2" in p
                                                           else "The answer is 3"), eval_id="ev-b", progress=False)
    found = store.sql("""SELECT json_extract_string(params, '$.eval_id') || '/' || json_extract_string(params,
        '$.item_id') AS key, run_id FROM runs WHERE kind = 'eval:baseline'""")
    runs |= dict(zip(found["key"], found["run_id"]))
    return path, runs


def reply(browser, **content):
    return browser.handle({"id": 3, **content})


def test_two_runs_side_by_side_show_both_answers_their_word_diff_and_entropy_curves(traces):
    path, runs = traces
    browser = RunBrowser(path)
    answer = reply(browser, type="compare", run_ids=[runs["cat"], runs["dog"]])
    assert answer["id"] == 3 and "error" not in answer
    data = answer["result"]
    assert [r["final_answer"] for r in data["runs"]] == ["the cat sat on the mat", HOSTILE]
    assert [r["run_id"] for r in data["runs"]] == [runs["cat"], runs["dog"]]
    assert browser.compared == []  # the page sets the pair it asked for; a reply never echoes it back
    assert "".join(op["a"] for op in data["diff"]) == "the cat sat on the mat"
    assert "".join(op["b"] for op in data["diff"]) == HOSTILE
    assert ("replace", " cat", " dog") in [(op["op"], op["a"], op["b"]) for op in data["diff"]]
    cat, dog = data["entropy"]  # the last generation's tokens, not the draft's
    assert cat == {"positions": [0, 1, 2, 3, 4, 5], "entropy": [0.5, 1.0, 0.25, None, 2.0, 0.75], "tokens": 6,
                   "mean": pytest.approx(0.9)}
    assert dog["entropy"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] and dog["mean"] == pytest.approx(0.35)
    assert data["items"] == [] and data["summary"] is None and [r["outcome"] for r in data["runs"]] == [None, None]


def test_the_comparison_as_static_html_escapes_model_text(traces):
    path, runs = traces
    browser = RunBrowser(path)
    browser.compare(runs["cat"], runs["dog"])
    assert browser.compared == [runs["cat"], runs["dog"]]  # from a cell: the page sees it and shows the pair
    page = browser.current[0].data
    assert "&lt;b onmouseover=alert(1)&gt;mat&lt;/b&gt;" in page and "<b onmouseover" not in page
    assert "<del> cat</del><ins> dog</ins>" in page and "mean token entropy (nats):</b> A 0.900, B 0.350" in page
    assert "<b onmouseover" not in comparison_html(browser.compare(runs["dog"], runs["cat"]))
    browser.open_run(runs["cat"])  # opening one run ends the comparison
    assert browser.compared == []


def test_items_of_two_evaluations_are_compared_item_by_item_disagreements_first(traces):
    path, runs = traces
    data = RunBrowser(path).compare(runs["ev-a/q1"], runs["ev-b/q2"])
    assert [r["outcome"]["item_id"] for r in data["runs"]] == ["q1", "q2"]
    assert [r["outcome"]["correct"] for r in data["runs"]] == [True, True]
    rows = [(r["item_id"], r["gold"], r["a_predicted"], r["a_correct"], r["b_predicted"], r["b_correct"], r["differs"])
            for r in data["items"]]
    assert rows == [("q1", "2", "2", True, "3", False, True), ("q2", "4", "2", False, "4", True, True),
                    ("q3", "6", None, None, "3", False, True)]
    assert data["items_total"] == 3
    assert data["summary"] == {"a": {"items": 2, "correct": 1}, "b": {"items": 3, "correct": 1}, "differs": 3}
    page = comparison_html(data)
    assert "items</b> (3 of 3; A 1/2 correct · B 1/3 correct; 3 differ)" in page


def test_two_items_of_one_evaluation_show_their_own_outcomes_only(traces):
    path, runs = traces
    data = RunBrowser(path).compare(runs["ev-b/q1"], runs["ev-b/q2"])
    assert data["items"] == [] and data["items_total"] == 0
    assert [(r["outcome"]["item_id"], r["outcome"]["correct"]) for r in data["runs"]] == [("q1", False), ("q2", True)]
    assert "evaluation item:</b> item_id q1 · predicted 3 · gold 2 · correct False" in comparison_html(data)


def test_a_long_generation_is_averaged_to_a_bounded_number_of_points(tmp_path):
    store = open_store(tmp_path / "long.duckdb")
    n = 2 * MAX_POINTS + 500
    long_run = record(store, " ".join(["w"] * n), [float(i % 2) for i in range(n)])
    short_run = record(store, "w", [None])
    data = RunBrowser(store).compare(long_run, short_run)
    curve = data["entropy"][0]
    assert curve["tokens"] == n and len(curve["positions"]) == len(curve["entropy"]) == MAX_POINTS
    assert curve["positions"] == sorted(curve["positions"]) and curve["mean"] == pytest.approx(0.5, abs=1e-3)
    assert all(0.0 <= v <= 1.0 for v in curve["entropy"])
    assert data["entropy"][1] == {"positions": [0], "entropy": [None], "tokens": 1, "mean": None}


def test_comparing_a_deleted_run_answers_with_an_error_that_says_to_refresh(tmp_path):
    store = open_store(tmp_path / "t.duckdb")
    kept, gone = record(store, "kept", [0.1]), record(store, "gone", [0.2])
    browser = RunBrowser(store)
    store.sql("DELETE FROM runs WHERE run_id = $r", {"r": gone}, write=True)
    message = f"no run '{gone}' in the trace store {tmp_path / 't.duckdb'} (it may have been deleted); refresh"
    assert reply(browser, type="compare", run_ids=[kept, gone])["error"].startswith(message)
    assert reply(browser, type="compare", run_ids=[gone, kept])["error"].startswith(message)
    assert browser.compared == [] and browser.current == []
    assert reply(browser, type="compare", run_ids=kept)["error"].startswith("compare needs two run ids, like")
    assert reply(browser, type="compare", run_ids=[kept, 7])["error"].startswith("a run id must be text")


def test_a_search_for_sql_or_wildcards_finds_only_the_runs_holding_that_text(tmp_path):
    store = open_store(tmp_path / "t.duckdb")
    attack = "x' OR 1=1; DELETE FROM runs; --"
    record(store, "plain", [0.1]), record(store, f"about {attack}", [0.2], task="$search")
    browser = RunBrowser(store)
    assert [r["answer"] for r in browser.page({"search": attack})["rows"]] == [f"about {attack}"]
    assert browser.page({"search": "$search"})["total"] == 1 and browser.page({"search": "' OR ''='"})["total"] == 0
    assert browser.page({})["total"] == 2
    record(store, r"saved to C:\Temp_1 at 100%", [0.3])  # wildcard characters are matched as themselves
    assert [r["answer"] for r in browser.page({"search": r"c:\temp_1"})["rows"]] == [r"saved to C:\Temp_1 at 100%"]
    assert browser.page({"search": "TEMP_"})["total"] == 1 and browser.page({"search": "temp%"})["total"] == 0
    assert browser.page({"search": "_"})["total"] == 1 and browser.page({"search": "saved%100"})["total"] == 0


WRITER = """
import sys
from reflectnb.store import open_store
from reflectnb.trace import Step
store = open_store(sys.argv[1])
with store.run("reflect", "scripted", {}) as run:
    run.on_step(Step("draft", "half written"))
    store.writer.flush(timeout=30)
    print(run.run_id, flush=True)
    sys.stdin.readline()
    run.set_result("done", "stop")
"""


def test_a_run_another_process_is_writing_shows_as_running_until_refreshed(tmp_path):
    path = tmp_path / "shared.duckdb"
    open_store(path)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        run_id = writer.stdout.readline().strip()
        assert run_id, "the writing process ended before it started its run"
        browser = RunBrowser(path)
        assert [(r["run_id"], r["status"]) for r in browser.first_page["rows"]] == [(run_id, "running")]
        assert browser.compare(run_id, run_id)["runs"][0]["status"] == "running"
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
    finally:
        writer.kill()
    assert browser.first_page["rows"][0]["status"] == "running"  # nothing changes until asked
    assert reply(browser, type="facets")["result"]["statuses"] == ["completed"]
    assert [(r["status"], r["answer"]) for r in browser.first_page["rows"]] == [("completed", "done")]
