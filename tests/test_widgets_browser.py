"""The run browser over a real DuckDB trace file: pages, filters, sort, search, tags, opening runs, bad input."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from IPython.core.error import UsageError
from magic_shell import clean_shell

import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError, TraceStoreError
from reflectnb.evaluate import compare
from reflectnb.store import open_store
from reflectnb.widgets import RunBrowser, TokenView, TreeView
from tests.test_tree_search import Toy, toy_backend

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"
SQLISH = "O'Brien said \"hi\"; DROP TABLE runs; --"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """A trace file holding one run of each kind, made through the public API with scripted models."""
    path = tmp_path_factory.mktemp("browse") / "traces.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REFLECTNB_TRACES", str(path))
        runs = {
            "reflect": reflectnb.reflect("Say hi", model="scripted:hello there|looks good STOP", rounds=1).run_id,
            "hostile": reflectnb.reflect("Echo", model=f"scripted:{HOSTILE}|fine STOP", rounds=1).run_id,
            "sqlish": reflectnb.reflect(SQLISH, model="scripted:100%|fine STOP", rounds=1).run_id,
            "debate": reflectnb.debate("Is 2 prime?", model=ScriptedBackend(lambda p, i: "Yes. The answer is 2"),
                                       agents=2, rounds=1).run_id,
            "tree": reflectnb.tree(Toy(), model=toy_backend(), method="bfs").run_id,
            "generate": reflectnb.generate("Count", model="scripted:one two three").run_id,
        }
        compare([{"id": "q1", "question": "What is 1 + 1?", "answer": "2"}], ["baseline"],
                model=ScriptedBackend(lambda p, i: "The answer is 2"), progress=False)
    store = open_store(path)
    runs["eval"] = store.sql("SELECT run_id FROM runs WHERE kind LIKE 'eval:%'")["run_id"][0]
    return path, runs


def ids(page):
    return [row["run_id"] for row in page["rows"]]


def reply(browser, **content):
    return browser.handle({"id": 7, **content})


def test_the_first_page_lists_every_run_newest_first_with_its_columns(traces):
    path, runs = traces
    browser = RunBrowser(path)
    page = browser.first_page
    assert page["total"] == len(runs) == browser.facets["runs"] and browser.empty_message == ""
    assert sorted(ids(page)) == sorted(runs.values())
    started = [row["started_at"] for row in page["rows"]]
    assert started == sorted(started, reverse=True)
    row = next(r for r in page["rows"] if r["run_id"] == runs["debate"])
    assert (row["kind"], row["method"], row["model"], row["status"]) == ("debate", "du", "scripted", "completed")
    assert row["tokens"] > 0 and row["seconds"] > 0 and row["answer"] == "2" and row["tags"] == []
    assert set(browser.facets["kinds"]) == {"reflect", "debate", "tree", "generate", "eval:baseline"}


def test_pages_of_two_runs_cover_every_run_once(traces):
    path, runs = traces
    browser = RunBrowser(path, page_size=2)
    seen = []
    for offset in range(0, len(runs), 2):
        page = reply(browser, type="page", query={"offset": offset})["result"]
        assert page["total"] == len(runs) and len(page["rows"]) <= 2 and page["offset"] == offset
        seen += ids(page)
    assert sorted(seen) == sorted(runs.values())
    assert reply(browser, type="page", query={"offset": 100})["result"]["rows"] == []


@pytest.mark.parametrize("query, expected", [
    ({"kind": "reflect"}, {"reflect", "hostile", "sqlish"}),
    ({"kind": "eval"}, {"eval"}),  # eval matches every eval:<method> kind
    ({"kind": "eval:baseline"}, {"eval"}),
    ({"model": "scripted"}, {"debate", "tree", "eval"}),
    ({"status": "completed"}, {"reflect", "hostile", "sqlish", "debate", "tree", "generate", "eval"}),
    ({"status": "failed"}, set()),
    ({"since": "2000-01-01", "until": "2999-12-31"}, {"reflect", "hostile", "sqlish", "debate", "tree", "generate", "eval"}),
    ({"until": "2000-01-01"}, set()),
    ({"search": "HELLO THERE"}, {"reflect"}),
    ({"kind": "reflect", "search": "ECHO"}, {"hostile"}),
    ({"kind": "debate", "search": "echo"}, set()),
])
def test_each_filter_is_applied_by_duckdb(traces, query, expected):
    path, runs = traces
    page = reply(RunBrowser(path), type="page", query=query)["result"]
    assert set(ids(page)) == {runs[name] for name in expected} and page["total"] == len(expected)


def test_sorting_by_duration_orders_both_ways_and_an_unknown_column_is_refused(traces):
    path, _ = traces
    browser = RunBrowser(path)
    up = [r["seconds"] for r in browser.page({"sort": "duration", "descending": False})["rows"]]
    down = [r["seconds"] for r in browser.page({"sort": "duration", "descending": True})["rows"]]
    assert up == sorted(up) and down == sorted(down, reverse=True) and up != down
    bad = reply(browser, type="page", query={"sort": "seconds; DROP TABLE runs"})
    assert bad["id"] == 7 and bad["error"].startswith("cannot sort runs by 'seconds; DROP TABLE runs'; sort by one of")
    assert reply(browser, type="page", query={"limit": 100000})["error"] == (
        "`limit` must be an integer from 1 to 500, got 100000")
    assert reply(browser, type="page", query={"order": "x"})["error"].startswith("unknown run filter 'order'")
    assert reply(browser, type="page", query={"descending": "no"})["error"] == "`descending` must be true or false, got 'no'"


def test_a_search_with_quotes_and_sql_in_it_is_bound_as_a_value(traces):
    path, runs = traces
    browser = RunBrowser(path)
    assert ids(browser.page({"search": SQLISH})) == [runs["sqlish"]]
    assert ids(browser.page({"search": "o'brien"})) == [runs["sqlish"]]
    assert ids(browser.page({"search": "100%"})) == [runs["sqlish"]]  # % is text, not a wildcard
    assert browser.page({"search": "hello_there"})["total"] == 0 and browser.page({"search": "%"})["total"] == 1
    assert browser.page({"search": "' OR 1=1 --"})["total"] == 0
    assert open_store(path).sql("SELECT count(*) AS n FROM runs")["n"][0] == len(runs)


def test_tags_and_notes_are_written_through_the_store_and_read_back(traces):
    path, runs = traces
    browser = RunBrowser(path)
    run = runs["generate"]
    assert reply(browser, type="tag", run_id=run, tag="keep me")["result"] == {"run_id": run, "tags": ["keep me"]}
    assert browser.tag(run, "odd")["tags"] == ["keep me", "odd"]
    assert browser.tag(run, "odd", remove=True)["tags"] == ["keep me"]
    assert reply(browser, type="note", run_id=run, note=HOSTILE)["result"] == {"notes": [HOSTILE]}
    fresh = RunBrowser(path)  # read back from the file
    assert fresh.facets["tags"] == ["keep me"]
    assert ids(fresh.page({"tag": "keep me"})) == [run] and fresh.page({"tag": "odd"})["total"] == 0
    assert next(r for r in fresh.first_page["rows"] if r["run_id"] == run)["tags"] == ["keep me"]
    rows = open_store(path).sql("SELECT tag, removed FROM run_tags WHERE run_id = $r ORDER BY created_at", {"r": run})
    assert rows.values.tolist() == [["keep me", False], ["odd", False], ["odd", True]]
    assert reply(browser, type="tag", run_id=run, tag="two\nlines")["error"].startswith(
        "a tag must be 1 to 40 printable characters on one line")
    assert "&lt;script&gt;" in fresh.open_run(run)[0].data and "<script>" not in fresh.open_run(run)[0].data


@pytest.mark.parametrize("name, layout", [("reflect", "chain"), ("debate", "layered"), ("tree", "tree")])
def test_selecting_a_run_opens_its_view_from_the_stored_rows(traces, name, layout):
    path, runs = traces
    browser = RunBrowser(path)
    answer = reply(browser, type="open", run_id=runs[name])["result"]
    assert answer["run_id"] == runs[name] and browser.selected == runs[name]
    _summary, tree, *rest = browser.current
    assert isinstance(tree, TreeView) and tree.layout == layout and len(tree.nodes["id"]) >= 2
    assert answer["views"][:2] == ["HTML", "TreeView"]
    if name != "tree":  # loops store their tokens; the toy tree search does not stream any
        assert isinstance(rest[0], TokenView) and rest[0].tokens


def test_a_generation_opens_with_its_tokens_and_an_evaluation_item_with_its_outcome(traces):
    path, runs = traces
    browser = RunBrowser(path)
    tokens = browser.open_run(runs["generate"])[-1]
    assert isinstance(tokens, TokenView) and "".join(t["text"] for t in tokens.tokens) == "one two three"
    summary = browser.open_run(runs["eval"])[0].data
    assert "evaluation item:" in summary and "item_id q1" in summary and "correct True" in summary


def test_a_deleted_run_id_answers_with_an_error_that_says_to_refresh(tmp_path, monkeypatch):
    monkeypatch.setenv("REFLECTNB_TRACES", str(tmp_path / "t.duckdb"))
    run = reflectnb.generate("x", model="scripted:gone soon").run_id
    browser = RunBrowser()
    open_store().sql("DELETE FROM runs WHERE run_id = $r", {"r": run}, write=True)
    message = f"no run '{run}' in the trace store {tmp_path / 't.duckdb'} (it may have been deleted); refresh"
    assert reply(browser, type="open", run_id=run)["error"].startswith(message)
    assert reply(browser, type="tag", run_id=run, tag="x")["error"].startswith(message)
    assert reply(browser, type="open", run_id=None)["error"].startswith("a run id must be text")
    assert reply(browser, type="launch")["error"].startswith("unknown request")


def test_the_static_html_is_an_escaped_table_of_the_runs_shown(traces):
    path, _ = traces
    browser = RunBrowser(path)
    browser.page({"search": "echo"})
    bundle = browser._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    page = data["text/html"]
    assert WIDGET_VIEW in data and "1 of 7 runs" in page and "<table>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "<img" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")


def test_an_empty_store_says_how_to_make_a_run(tmp_path):
    path = tmp_path / "empty.duckdb"
    open_store(path)
    with pytest.raises(OptionError, match="`page_size` must be an integer from 1 to 500, got 0"):
        reflectnb.browse(path, page_size=0)
    browser = reflectnb.browse(path)
    assert browser.first_page["rows"] == [] and browser.facets["runs"] == 0
    assert browser.empty_message.startswith(f"No runs in the trace store {path} yet. Make one — reflectnb.reflect(")
    assert "then press Refresh." in browser._repr_html_()


def test_a_missing_file_is_an_error_and_is_not_created(tmp_path):
    path = tmp_path / "nowhere" / "traces.duckdb"
    with pytest.raises(TraceStoreError, match="no trace store at .* yet: nothing was recorded there"):
        reflectnb.browse(path)
    assert not path.parent.exists()


def test_a_store_from_a_newer_reflectnb_gives_the_same_error_as_reflect_sql(tmp_path):
    path = tmp_path / "newer.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations(version INTEGER, applied_at TIMESTAMPTZ, description VARCHAR)")
    con.execute("INSERT INTO schema_migrations VALUES (99, now(), 'from the future')")
    con.close()
    with pytest.raises(TraceStoreError, match=r"has trace schema v99, but this reflectnb knows only up to v\d+; "
                                              r"upgrade reflectnb"):
        reflectnb.browse(path)


def test_the_reflect_runs_magic_opens_the_browser_and_names_a_missing_file(traces, tmp_path):
    path, runs = traces
    with clean_shell() as ip:
        browser = ip.run_line_magic("reflect_runs", str(path))
        assert isinstance(browser, RunBrowser) and browser.first_page["total"] == len(runs)
        with pytest.raises(UsageError, match="no trace store at"):
            ip.run_line_magic("reflect_runs", str(tmp_path / "missing.duckdb"))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """100,000 synthetic runs inserted with DuckDB directly (the store only has to read them)."""
    path = tmp_path_factory.mktemp("big") / "traces.duckdb"
    open_store(path)
    con = duckdb.connect(str(path))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    con.execute("""INSERT INTO runs (run_id, kind, model, params, status, started_at, seconds, completion_tokens,
        task, final_answer) SELECT 'run-' || i, ['reflect', 'debate', 'tree', 'eval:baseline'][i % 4 + 1],
        'model-' || (i % 3), '{"method": "du"}', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END,
        $start + to_seconds(i), (i % 97) / 10.0, i % 500, 'task number ' || i, 'answer ' || i FROM range(100000) t(i)""",
                {"start": start})
    con.close()
    return path


def test_a_hundred_thousand_runs_come_back_a_page_at_a_time(big):
    browser = RunBrowser(big)
    assert browser.first_page["total"] == 100_000 and len(browser.first_page["rows"]) == 50
    assert browser.first_page["rows"][0]["run_id"] == "run-99999"
    page = browser.page({"kind": "debate", "status": "failed", "search": "task number 99", "sort": "tokens"})
    # i % 4 == 1 and i % 10 == 0 never hold together: debate runs are odd-numbered
    assert page["total"] == 0
    page = browser.page({"kind": "reflect", "model": "model-0", "search": "task number 99", "offset": 10, "limit": 5})
    expected = sorted((i for i in range(100_000) if i % 12 == 0 and str(i).startswith("99")), reverse=True)
    assert page["total"] == len(expected) and ids(page) == [f"run-{i}" for i in expected[10:15]]


def test_a_run_still_being_recorded_shows_as_running_until_refreshed(tmp_path):
    from reflectnb.trace import Step

    store = open_store(tmp_path / "live.duckdb")
    with store.run("generate", "scripted", {}) as run:
        run.on_step(Step(kind="generation", text="partial"))
        browser = RunBrowser(store)
        assert [(r["run_id"], r["status"]) for r in browser.first_page["rows"]] == [(run.run_id, "running")]
    assert browser.first_page["rows"][0]["status"] == "running"  # nothing changes until asked
    assert reply(browser, type="facets")["result"]["statuses"] == ["completed"]
    assert browser.first_page["rows"][0]["status"] == "completed"
