"""The views in Jupyter Notebook 7's interface, not only JupyterLab's: live view, stop button, tree view.

Notebook 7 is its own front-end (``python -m notebook``, the ``notebook7`` fixture) built from
JupyterLab's packages; its widget manager and output areas load reflectnb's bundles the same way.
Cells run through its command registry (``--JupyterNotebookApp.expose_app_in_browser`` exposes
``window.jupyterapp``), so ``drive.py``'s helpers work here once the notebook is open.
"""

from __future__ import annotations

import re

import pytest
from drive import (STOP_NOTEBOOK, cell_node, errors, open_notebook, outputs, run_cell, start_cell, text_of, wait_cell,
                   watch_streaming)

pytestmark = pytest.mark.browser

TREE = """from reflectnb.strategies.tree import TreeResult
from reflectnb.widgets import TreeView
rows = [{'node_id': i, 'parent': None if i == 0 else (i - 1) // 3, 'depth': 0, 'text': f'step {i}',
         'value': (i % 5) / 4, 'visits': 1, 'status': 'expanded'} for i in range(40)]
TreeView.from_result(TreeResult.rebuild_from_rows(rows, method='synthetic'))"""


def open_in_notebook7(page, server, name: str) -> None:
    """Open a notebook in Notebook 7's single-document interface (``/notebooks/…``); wait for an idle kernel."""
    open_notebook(page, server, name, path="notebooks")
    app = page.evaluate("() => [window.jupyterapp.name, window.jupyterapp.version]")
    assert app[0] == "Jupyter Notebook" and app[1].startswith("7."), f"not Notebook 7's interface: {app}"


@pytest.mark.model
def test_in_notebook_7_the_live_view_streams_and_its_stop_button_stores_the_run_as_interrupted(nb7_page, notebook7):
    page = nb7_page
    name = notebook7.notebook("nb7-live.ipynb", STOP_NOTEBOOK)
    open_in_notebook7(page, notebook7, name)
    assert errors(run_cell(page, 0)) == []
    start_cell(page, 1)
    seen = watch_streaming(page, 1)
    assert errors(outputs(page, 1)) == []
    assert len(set(seen)) >= 3 and seen == sorted(seen), f"streamed lengths seen: {seen}"
    cell_node(page, 1).locator(".rnb-stop").click()
    wait_cell(page, timeout=60_000)
    view = cell_node(page, 1).locator(".rnb-live")
    assert view.locator(".rnb-status").inner_text() == "interrupted"
    assert errors(outputs(page, 1)) == []  # an interrupted run is a result, not a traceback
    table = text_of(run_cell(page, 2))
    assert re.search(r"reflect\s+interrupted", table), table
    assert "42" in text_of(run_cell(page, 3))  # the kernel is still usable
    assert page.console_errors == []


def test_in_notebook_7_the_tree_view_draws_its_nodes_and_zooms(nb7_page, notebook7):
    page = nb7_page
    name = notebook7.notebook("nb7-tree.ipynb", [TREE])
    open_in_notebook7(page, notebook7, name)
    assert errors(run_cell(page, 0)) == []
    root = cell_node(page, 0).locator(".rnb-tree")
    root.wait_for(timeout=30_000)  # fails if reflectnb/static/tree.js does not load in Notebook 7
    handle = root.element_handle()
    page.wait_for_function("(el) => el.dataset.state === 'ready'", arg=handle, timeout=30_000)
    assert root.get_attribute("data-nodes") == "40" and root.get_attribute("data-drawn") == "40"
    painted = root.locator("canvas").first.evaluate(
        "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }")
    assert painted > 0, "the tree's canvas is blank"
    before = float(root.get_attribute("data-zoom"))
    root.locator(".rnb-tree-zoom-in").click()
    page.wait_for_function("([el, z]) => Number(el.dataset.zoom) > z", arg=[handle, before])
    assert page.console_errors == []
