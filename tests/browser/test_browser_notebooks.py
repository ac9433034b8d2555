"""The teaching notebooks, run cell by cell in JupyterLab, as a student would; then saved and exported.

Each notebook runs once: in the page every reflectnb view must mount, and the notebook
JupyterLab saved must give every view a static fallback that ``jupyter nbconvert --to html``
shows in its cell (``tests/notebook_checks.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from docs_output import keep_executed_notebook, screenshot
from drive import cell_count, errors, open_notebook, outputs, run_cell
from notebook_checks import check_static_html, widgets_without_fallback

pytestmark = [pytest.mark.browser, pytest.mark.model]

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"
TIMES = Path(__file__).resolve().parent / "artifacts" / "notebook-times.json"
# The views the docs' gallery page shows from these runs (docs/gallery.md): notebook -> (element, picture name)
GALLERY = {"00-quickstart": [(".rnb-live", "live-loop")],
           "02-critique": [(".rnb-live", "critique-verdicts")],
           "03-debate": [(".rnb-live", "debate")],
           "04-reflection-tokens": [(".rnb-tokens-view", "token-view")],
           "06-reasoning-trees": [(".rnb-tree", "tree-view")]}
# Notebooks whose last cell checks their printed conclusions against their tables: the line it prints when they match
SELF_CHECKS = {"08-when-reflection-helps": "findings match the tables."}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_cell_by_cell_in_jupyterlab(path, page, lab):
    name = lab.notebook(path.name, path)
    open_notebook(page, lab, name)
    started = time.monotonic()
    for i in range(cell_count(page)):
        outs = run_cell(page, i, timeout=600_000)
        assert errors(outs) == [], f"cell {i} of {path.name}"
    ran = round(time.monotonic() - started, 1)  # the cells alone (benchmarks/bench_notebooks.py reads these)
    # every widget output in the notebook has mounted in the page (none failed to load its bundle)
    page.wait_for_function("(n) => document.querySelectorAll('.rnb').length >= n", arg=_reflectnb_views(page),
                           timeout=30_000)
    assert local_errors(page.console_errors) == []
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = nbformat.read(lab.root / name, as_version=4)
    assert widgets_without_fallback(saved) == []
    if path.stem in SELF_CHECKS:  # the check cell ran to its end (a deleted or skipped check fails here)
        assert SELF_CHECKS[path.stem] in _printed(saved), f"{path.name}: its findings were not checked"
    check_static_html(saved, (lab.root / name).parent, quickstart=path.stem == "00-quickstart")
    keep_executed_notebook(lab.root / name, path.name)  # the docs page shows these outputs (docs/hooks/from_tests.py)
    for selector, view in GALLERY.get(path.stem, []):
        screenshot(page.locator(selector).first, view)
    TIMES.parent.mkdir(exist_ok=True)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[path.stem] = ran
    TIMES.write_text(json.dumps(times, indent=1))


def local_errors(messages: list[str]) -> list[str]:
    """Console errors, less the failed loads of vega from its CDN: altair's HTML renderer fetches
    vega from cdn.jsdelivr.net, which this offline machine cannot reach (charts stay blank here)."""
    offline = ("request failed: https://cdn.jsdelivr.net/", "net::ERR_NAME_NOT_RESOLVED")
    return [m for m in messages if not any(o in m for o in offline)]


def _printed(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed (their stdout streams)."""
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _reflectnb_views(page) -> int:
    """How many reflectnb views the notebook's outputs hold (their text/html fallback says so)."""
    total = 0
    for i in range(cell_count(page)):
        for o in outputs(page, i):
            data = o.get("data") or {}
            html = "".join(data.get("text/html", "")) if WIDGET in data else ""
            total += ("rnb-static" in html) or ("reflectnb-tree" in html)
    return total
