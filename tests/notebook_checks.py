"""Checks of an executed teaching notebook: every view has a static fallback, and the nbconvert export shows it.

Shared by ``test_notebooks.py`` (the quickstart run headless, as ``dev.sh quickstart`` runs it) and the
browser tests (every notebook run cell by cell in JupyterLab, then saved and exported).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for cell in nb.cells if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.get("output_type") == "error"]


WIDGET = "application/vnd.jupyter.widget-view+json"


TQDM = re.compile(r"\d+/\d+ \[")  # a progress bar's final state, e.g. "eval baseline: 100%|███| 6/6 [00:03<…"


def widgets_without_fallback(nb: nbformat.NotebookNode) -> list[str]:
    """Widget outputs that nbconvert (no widget manager) could not show.

    reflectnb's views need text/html and text/plain; tqdm's progress bars (ipywidgets) show their
    final state as text/plain, which is enough.
    """
    def missing(data: dict) -> bool:
        plain = "".join(data.get("text/plain", ""))
        return "text/plain" not in data or ("text/html" not in data and not TQDM.search(plain))

    return [f"cell {i}: {sorted(o['data'])}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for o in cell.get("outputs", []) if WIDGET in o.get("data", {}) and missing(o["data"])]


VIEW = re.compile(r"class='(rnb-static|reflectnb-tree|reflectnb-result|reflectnb-eval)'")


def check_static_html(nb: nbformat.NotebookNode, workdir: Path, quickstart: bool) -> None:
    """``jupyter nbconvert --to html`` of the executed notebook, with no widget manager, shows every view.

    Each code cell whose outputs hold a reflectnb view (a widget or a result object) must show that
    view's static form, with its text, in the same cell of the exported page.
    """
    from bs4 import BeautifulSoup

    executed = workdir / "executed.ipynb"
    nbformat.write(nb, executed)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(executed)],
                   check=True, capture_output=True, timeout=300)
    page = BeautifulSoup(executed.with_suffix(".html").read_text(), "html.parser")
    cells = page.select("div.jp-Cell")
    assert len(cells) == len(nb.cells)
    for i, cell in enumerate(nb.cells):
        wanted = {m.group(1) for o in cell.get("outputs", [])
                  for m in VIEW.finditer("".join((o.get("data") or {}).get("text/html", "")))}
        for cls in wanted:
            shown = cells[i].select(f".jp-OutputArea .{cls}")
            assert shown and all(node.get_text(strip=True) for node in shown), f"cell {i}: no static {cls}"
    if quickstart:  # the live view's static form holds the whole run
        static = " ".join(node.get_text(" ") for node in page.select(".rnb-static"))
        assert "completed" in static and "round 1 · refine" in static
