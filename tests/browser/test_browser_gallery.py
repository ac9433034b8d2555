"""The gallery's pictures no teaching notebook run gives: the run browser, and a schedule chart drawn offline.

The other views' pictures come from the teaching notebooks' runs (``test_browser_notebooks.py``). Each
picture here is taken only after the test has checked that the view shows what it should; it lands in
``build/docs-from-tests/gallery/`` for ``docs/gallery.md`` (``docs_output.py``).
"""

from __future__ import annotations

import pytest
from docs_output import screenshot
from drive import cell_node, errors, open_notebook, run_cell

pytestmark = pytest.mark.browser

RUNS = """import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
reflectnb.reflect("Name a prime number between 10 and 20.", rounds=1,
                  model=ScriptedBackend(["11 is prime.", "Correct, and 13, 17 and 19 are too. STOP"]))
solve, judge = "Step 1: 4 * 2 = 8.\\nStep 2: 3 + 8 = 11.\\nThe answer is 11", "Step 1: correct.\\nStep 2: correct."
reflectnb.critique("What is 3 + 4 * 2?", rounds=1, model=ScriptedBackend(lambda p, i: judge if i % 2 else solve))
reflectnb.debate("Is 91 prime?", model=ScriptedBackend(lambda p, i: "No: 91 = 7 * 13. The answer is no"),
                 agents=2, rounds=1)
%load_ext reflectnb
"""

SCHEDULE = """from IPython.display import display
from reflectnb.decoding import parse_schedule
chart = parse_schedule('cyclic(amplitude=5, period=60)').chart(max_position=120, realised=[14, 44, 75])
display({'application/vnd.vegalite.v5+json': chart.to_dict()}, raw=True)"""


def test_the_run_browser_lists_the_runs_and_opens_one_for_the_gallery(page, lab):
    name = lab.notebook("gallery-runs.ipynb", [RUNS, "%reflect_runs"])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    root = cell_node(page, 1).locator(".rnb-browser")
    root.wait_for(timeout=30_000)
    handle = root.element_handle()
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.rows === '3'", arg=handle)
    table = root.locator(".rnb-browser-table").inner_text()
    assert "critique" in table and "debate" in table and "reflect" in table
    root.locator(".rnb-browser-row", has_text="11 is prime.").first.click()
    tree = cell_node(page, 1).locator(".rnb-tree")  # the reflect run's refinement chain, opened below
    tree.wait_for(timeout=30_000)
    page.wait_for_function("(el) => el.dataset.state === 'ready'", arg=tree.element_handle(), timeout=30_000)
    assert "11 is prime." in cell_node(page, 1).locator(".rnb-run").inner_text()  # the run's answer, above it
    screenshot(cell_node(page, 1), "run-browser")


def test_a_schedule_chart_draws_in_jupyterlab_for_the_gallery(page, lab):
    """JupyterLab's own Vega-Lite renderer draws the chart's spec: altair 6's default HTML output loads
    Vega from a CDN, which this offline machine cannot reach (its output stays blank here)."""
    name = lab.notebook("gallery-schedule.ipynb", [SCHEDULE])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    drawing = cell_node(page, 0).locator(".jp-RenderedVegaCommon5 canvas, .jp-RenderedVegaCommon5 svg").first
    drawing.wait_for(timeout=30_000)
    painted = page.wait_for_function(
        "(c) => { if (c.tagName !== 'CANVAS') return c.querySelectorAll('path').length;"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n > 1000 && n; }",
        arg=drawing.element_handle(), timeout=30_000).json_value()
    assert painted > 0
    screenshot(cell_node(page, 0).locator(".jp-RenderedVegaCommon5"), "schedule-chart")
