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
from drive import cell_count, errors, open_notebook, outputs, run_cell
from notebook_checks import check_static_html, widgets_without_fallback

pytestmark = [pytest.mark.browser, pytest.mark.model]

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"
TIMES = Path(__file__).resolve().parent / "artifacts" / "notebook-times.json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_cell_by_cell_in_jupyterlab(path, page, lab):
    name = lab.notebook(path.name, path)
    open_notebook(page, lab, name)
    started = time.monotonic()
    for i in range(cell_count(page)):
        outs = run_cell(page, i, timeout=600_000)
        assert errors(outs) == [], f"cell {i} of {path.name}"
    # every widget output in the notebook has mounted in the page (none failed to load its bundle)
    page.wait_for_function("(n) => document.querySelectorAll('.rnb').length >= n", arg=_reflectnb_views(page),
                           timeout=30_000)
    assert local_errors(page.console_errors) == []
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = nbformat.read(lab.root / name, as_version=4)
    assert widgets_without_fallback(saved) == []
    check_static_html(saved, (lab.root / name).parent, quickstart=path.stem == "00-quickstart")
    TIMES.parent.mkdir(exist_ok=True)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[path.stem] = round(time.monotonic() - started, 1)
    TIMES.write_text(json.dumps(times, indent=1))


def local_errors(messages: list[str]) -> list[str]:
    """Console errors, less the failed loads of vega from its CDN: altair's HTML renderer fetches
    vega from cdn.jsdelivr.net, which this offline machine cannot reach (charts stay blank here)."""
    offline = ("request failed: https://cdn.jsdelivr.net/", "net::ERR_NAME_NOT_RESOLVED")
    return [m for m in messages if not any(o in m for o in offline)]


def _reflectnb_views(page) -> int:
    """How many reflectnb views the notebook's outputs hold (their text/html fallback says so)."""
    total = 0
    for i in range(cell_count(page)):
        for o in outputs(page, i):
            data = o.get("data") or {}
            html = "".join(data.get("text/html", "")) if WIDGET in data else ""
            total += ("rnb-static" in html) or ("reflectnb-tree" in html)
    return total
