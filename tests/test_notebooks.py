"""Every teaching notebook runs top to bottom on the embedded model, and exports to readable static HTML."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.model


def execute(path: Path, workdir: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("REFLECTNB_TRACES", str(workdir / "traces.duckdb"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def errors(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for cell in nb.cells if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_top_to_bottom_without_errors(path, tmp_path, monkeypatch):
    nb = execute(path, tmp_path, monkeypatch)
    assert errors(nb) == []
    assert widgets_without_fallback(nb) == []
    if path.stem == "00-quickstart":
        check_static_html(nb)


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


def check_static_html(nb: nbformat.NotebookNode) -> None:
    """Exported without a widget manager, the live view shows its escaped static form with the whole run."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "rnb-static" in body and "completed" in body and "round 1 · refine" in body
