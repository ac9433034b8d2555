"""The run browser in a real JupyterLab: pages from the kernel, filter, sort, open a run of each kind, tag it,
compare two runs; text stays text."""

from __future__ import annotations

from pathlib import Path

import pytest
from drive import cell_node, errors, open_notebook, run_cell, text_of

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # where conftest.py puts every screenshot

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
SETUP = f"""import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
reflectnb.reflect("Say hi", model="scripted:hello there|looks good STOP", rounds=1)
reflectnb.reflect("Echo", model=ScriptedBackend([{HOSTILE!r}, "fine STOP"]), rounds=1)
reflectnb.debate("Is 2 prime?", model=ScriptedBackend(lambda p, i: "Yes. The answer is 2"), agents=2, rounds=1)
%load_ext reflectnb
"""


def test_the_browser_filters_sorts_opens_and_tags_runs_in_jupyterlab(page, lab):
    read_tags = "print('tags:', reflectnb.traces.sql('SELECT unnest(tags) AS t FROM run_tag_list')['t'].tolist())"
    name = lab.notebook("runs.ipynb", [SETUP, "browser = %reflect_runs\nbrowser", read_tags])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    root = cell_node(page, 1).locator(".rnb-browser")
    root.wait_for(timeout=30_000)  # fails if reflectnb/static/browser.js is missing or broken
    handle = root.element_handle()
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.rows === '3'", arg=handle)
    assert page.evaluate("() => window.__xss === undefined")
    assert HOSTILE in root.locator(".rnb-browser-table").inner_text()

    root.locator("th[data-sort=duration]").click()  # sorted in the kernel: a request and its reply
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.querySelector('th[data-sort=duration]')"
                           ".textContent.includes('▼')", arg=handle)
    root.locator("select[data-field=kind]").select_option("debate")
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.total === '1'", arg=handle)

    root.locator(".rnb-browser-row").first.click()
    cell_node(page, 1).locator(".rnb-tree").wait_for(timeout=30_000)  # the debate's view, shown below
    root.locator(".rnb-browser-tag-input").fill("checked")
    root.locator(".rnb-browser-add-tag").click()
    page.wait_for_function("(el) => el.querySelector('.rnb-browser-tags').textContent === 'checked'", arg=handle)
    assert "tags: ['checked']" in text_of(run_cell(page, 2))
    assert page.evaluate("() => window.__xss === undefined")


COMPARE_SETUP = '''import json
import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.evaluate import compare
from reflectnb.store import open_store
from reflectnb.trace import Generation, Node, Step, TokenEvent
store = open_store()  # this notebook's folder's .reflectnb/traces.duckdb

def record(answer, entropies):
    toks = [TokenEvent(row=0, position=i, token_id=i, text=(" " if i else "") + w, entropy=e)
            for i, (w, e) in enumerate(zip(answer.split(" "), entropies))]
    with store.run("generate", "scripted", {}) as run:
        run.on_step(Step("draft", answer, generation=Generation(answer, "scripted", "Where is the cat?", tokens=toks)))
        run.set_result(answer, "stop", task="Where is the cat?")
    return run.run_id

ids = {"cat": record("the cat sat on the mat", [0.5, 1.0, 0.25, 0.1, 2.0, 0.75]),
       "dog": record("the dog sat on the " + HOSTILE, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])}
with store.run("tree", "scripted", {"method": "bfs"}) as run:
    run.on_node(Node(0, None, 0, "root", value=0.5, visits=1))
    run.on_node(Node(1, 0, 1, "child", value=0.9, visits=1))
    run.set_result("child", "stop", task="grow a tree")
ids["tree"] = run.run_id
ids["reflect"] = reflectnb.reflect("Say hi", model="scripted:hello there|looks good STOP", rounds=1).run_id
ids["debate"] = reflectnb.debate("Is 2 prime?", model=ScriptedBackend(lambda p, i: "Yes. The answer is 2"),
                                 agents=2, rounds=1).run_id
items = [{"id": f"q{n}", "question": f"What is {n} + {n}?", "answer": str(2 * n)} for n in (1, 2, 3)]
compare(items[:2], ["baseline"], model=ScriptedBackend(lambda p, i: "The answer is 2"), eval_id="ev-a", progress=False)
compare(items, ["baseline"], model=ScriptedBackend(lambda p, i: "The answer is 4" if "2 + 2" in p else "The answer is 3"),
        eval_id="ev-b", progress=False)
found = store.sql("SELECT json_extract_string(params, '$.eval_id') || '/' || json_extract_string(params, '$.item_id') "
                  "AS key, run_id FROM runs WHERE kind LIKE 'eval:%'")
ids |= dict(zip(found["key"], found["run_id"]))
print("IDS", json.dumps(ids))
'''.replace("HOSTILE", repr(HOSTILE))
KINDS = [("cat", ".rnb-tokens-view"), ("tree", ".rnb-tree"), ("reflect", ".rnb-tree"), ("debate", ".rnb-tree"),
         ("ev-a/q1", None)]  # (run, the view it opens with): generate, tree, reflect, debate, evaluation item


def test_the_browser_opens_each_kind_and_compares_two_runs_in_jupyterlab(page, lab):
    import json

    name = lab.notebook("compare.ipynb", [COMPARE_SETUP, "browser = reflectnb.browse()\nbrowser",
                                          "data = browser.compare(ids['cat'], ids['tree'])\nprint(len(data['diff']))"])
    open_notebook(page, lab, name)
    outs = run_cell(page, 0)
    assert errors(outs) == []
    ids = json.loads(text_of(outs).split("IDS", 1)[1].strip().splitlines()[0])
    assert errors(run_cell(page, 1)) == []
    output = cell_node(page, 1)
    root = output.locator(".rnb-browser")
    root.wait_for(timeout=30_000)
    handle = root.element_handle()
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.rows === '10'", arg=handle)

    def row(run_id):  # a click on a cell opens the run; the tick box compares
        return root.locator(f".rnb-browser-row[data-run-id='{run_id}']")

    for key, view in KINDS:
        row(ids[key]).locator("td.rnb-browser-kind").click()
        output.locator(".rnb-run code", has_text=ids[key]).wait_for(timeout=30_000)  # its summary, below the table
        if view is None:
            assert "evaluation item: item_id q1" in output.locator(".rnb-run").inner_text()
        else:
            output.locator(view).first.wait_for(timeout=30_000)

    row(ids["cat"]).locator(".rnb-browser-pick").click()
    row(ids["dog"]).locator(".rnb-browser-pick").click()
    page.wait_for_function("([el, pair]) => el.dataset.compared === pair", arg=[handle, f"{ids['cat']},{ids['dog']}"])
    answers = root.locator(".rnb-browser-side-answer").all_inner_texts()
    assert answers == ["the cat sat on the mat", f"the dog sat on the {HOSTILE}"]
    assert root.locator(".rnb-browser-diff .rnb-del").all_inner_texts() == [" cat", " mat"]
    assert root.locator(".rnb-browser-entropy path").count() == 2
    assert output.locator(".rnb-run").count() == 0  # the single run's views made way for the pair
    output.screenshot(path=str(ARTIFACTS / "browser-compare.png"))  # for the docs' gallery
    assert page.evaluate("() => window.__xss === undefined")

    row(ids["ev-a/q1"]).locator(".rnb-browser-pick").click()  # two new ticks replace the pair
    row(ids["ev-b/q2"]).locator(".rnb-browser-pick").click()
    page.wait_for_function("([el, pair]) => el.dataset.compared === pair",
                           arg=[handle, f"{ids['ev-a/q1']},{ids['ev-b/q2']}"])
    assert root.locator(".rnb-browser-item").count() == 3
    assert root.locator(".rnb-browser-item").first.locator("td").all_inner_texts() == ["q1", "2", "2", "✓", "3", "✗"]

    assert errors(run_cell(page, 2)) == []  # browser.compare(...) in a cell shows the pair in the widget too
    page.wait_for_function("([el, pair]) => el.dataset.compared === pair", arg=[handle, f"{ids['cat']},{ids['tree']}"])

    root.locator(".rnb-browser-search").press_sequentially("cat sat")  # typed: debounced, filtered by DuckDB
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.total === '1'", arg=handle)
    assert root.locator(".rnb-browser-row").get_attribute("data-run-id") == ids["cat"]
    assert page.evaluate("() => window.__xss === undefined")
    root.locator(".rnb-browser-search").fill("")
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.total === '10'", arg=handle)
    assert page.evaluate("(el) => el.dataset.compared", handle) == f"{ids['cat']},{ids['tree']}"  # no stale reply won
