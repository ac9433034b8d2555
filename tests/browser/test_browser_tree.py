"""The tree view in a real JupyterLab: renders, zooms, selects with a real click that Python sees; 10,000 nodes."""

from __future__ import annotations

import pytest
from drive import cell_node, errors, open_notebook, run_cell, start_cell, text_of, wait_cell

pytestmark = pytest.mark.browser

SETUP = """import reflectnb
from reflectnb.strategies.tree import TreeResult
from reflectnb.widgets import TreeView

def synthetic(n, branch=10):
    rows = [{"node_id": i, "parent": None if i == 0 else (i - 1) // branch, "depth": 0, "text": f"step {i}",
             "value": (i % 7) / 6, "visits": 1, "status": "expanded", "iteration": i // 500,
             "prompt": f"prompt of {i}", "attributes": {"best": i in (0, 1, 11, 111)}} for i in range(n)]
    return TreeResult.rebuild_from_rows(rows, method="synthetic")
"""


def test_the_tree_view_zooms_and_a_click_selects_a_node_that_python_reads(page, lab):
    name = lab.notebook("tree.ipynb", [SETUP, "view = TreeView.from_result(synthetic(40)); view",
                                       "print('selected:', view.selected, '|', view.details.get('prompt'))"])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    root = cell_node(page, 1).locator(".rnb-tree")
    root.wait_for(timeout=30_000)  # fails if reflectnb/static/tree.js is missing or broken
    page.wait_for_function("(el) => el.dataset.state === 'ready'", arg=root.element_handle(), timeout=30_000)
    assert root.get_attribute("data-nodes") == "40"
    before = float(root.get_attribute("data-zoom"))
    root.locator(".rnb-tree-zoom-in").click()
    page.wait_for_function("([el, z]) => Number(el.dataset.zoom) > z", arg=[root.element_handle(), before])
    shown = root.evaluate("(el) => [...Array(40).keys()].filter((i) => el.rnbTree.positionOf(i))")
    assert 0 < len(shown) < 40  # zoomed in: some nodes are out of view
    target = shown[-1]
    position = root.evaluate("(el, i) => el.rnbTree.positionOf(i)", target)
    page.mouse.click(position["x"], position["y"])
    details = root.locator(".rnb-tree-details")
    page.wait_for_function("([el, i]) => el.textContent.includes('prompt of ' + i)", arg=[details.element_handle(), target])
    assert f"step {target}" in details.inner_text()
    assert f"selected: {target} | prompt of {target}" in text_of(run_cell(page, 2))


def test_search_and_replay_work_in_the_browser(page, lab):
    name = lab.notebook("tree-search.ipynb", [SETUP, "view = TreeView.from_result(synthetic(1200)); view",
                                              "print('selected:', view.selected)"])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    root = cell_node(page, 1).locator(".rnb-tree")
    page.wait_for_function("(el) => el.dataset.state === 'ready'", arg=root.element_handle(), timeout=30_000)
    box = root.locator(".rnb-tree-search")
    box.fill("step 1111")
    box.press("Enter")
    page.wait_for_function("(el) => el.textContent.includes('prompt of 1111')",
                           arg=root.locator(".rnb-tree-details").element_handle())
    assert "selected: 1111" in text_of(run_cell(page, 2))
    slider = root.locator(".rnb-tree-replay")
    assert slider.get_attribute("max") == "2"
    slider.fill("0")  # only nodes of iteration 0 (ids < 500)
    page.wait_for_function("(el) => el.dataset.nodes === '500'", arg=root.element_handle())


def test_ten_thousand_nodes_render_with_culled_drawing(page, lab):
    name = lab.notebook("tree-10k.ipynb", [SETUP, "big = TreeView.from_result(synthetic(10_000)); big"])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    root = cell_node(page, 1).locator(".rnb-tree")
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.firstRenderMs",
                           arg=root.element_handle(), timeout=60_000)
    # How fast the first render is: benchmarks/bench_browser.py (tree_view_10k); here, what it draws.
    assert root.get_attribute("data-nodes") == "10000"
    assert root.get_attribute("data-drawn") == "10000"  # fitted to the view: every node is drawn
    for _ in range(6):
        root.locator(".rnb-tree-zoom-in").click()
    page.wait_for_function("(el) => Number(el.dataset.drawn) < 2000", arg=root.element_handle())
    assert page.console_errors == []


def test_a_live_tree_search_grows_in_the_view_and_its_stop_button_ends_it(page, lab):
    name = lab.notebook("tree-live.ipynb", [
        "%load_ext reflectnb\nimport time\nfrom reflectnb.backends.scripted import ScriptedBackend\n"
        "slow = ScriptedBackend(lambda prompt, i: (time.sleep(0.05), f'step {i}')[1])  # never reaches an answer",
        "%%tree --method mcts --iterations 300 --branch 2 --depth 8 --model slow -o m\nCount the steps.",
        "%reflect_sql SELECT kind, status FROM runs",
        "print(6 * 7)"])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    start_cell(page, 1)
    root = cell_node(page, 1).locator(".rnb-tree")
    root.wait_for(timeout=60_000)
    page.wait_for_function("(el) => Number(el.dataset.nodes) >= 3", arg=root.element_handle(), timeout=120_000)
    root.locator(".rnb-tree-stop").click()
    wait_cell(page, timeout=60_000)
    assert root.locator(".rnb-status").inner_text() == "interrupted"
    assert "interrupted" in text_of(run_cell(page, 2))
    assert "42" in text_of(run_cell(page, 3))
