"""The quickstart notebook runs headless, as ``bash scripts/dev.sh quickstart`` runs it, and exports to static HTML.

Every teaching notebook is run cell by cell in a real JupyterLab by
``tests/browser/test_browser_notebooks.py``, which then saves it and makes the
same static checks on its export; this test covers the headless path (nbclient,
no widget manager, widget state not stored) that the README's main job takes.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from notebook_checks import check_static_html, errors, widgets_without_fallback

QUICKSTART = Path(__file__).resolve().parents[1] / "notebooks" / "00-quickstart.ipynb"

pytestmark = pytest.mark.model


def execute(path: Path, workdir: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("REFLECTNB_TRACES", str(workdir / "traces.duckdb"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def test_the_quickstart_runs_headless_and_exports_every_view_as_static_html(tmp_path, monkeypatch):
    nb = execute(QUICKSTART, tmp_path, monkeypatch)
    assert errors(nb) == []
    assert widgets_without_fallback(nb) == []
    check_static_html(nb, tmp_path, quickstart=True)
