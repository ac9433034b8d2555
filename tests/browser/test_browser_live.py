"""The live view in a real JupyterLab: it mounts, streams tokens, finishes, and its stop button works."""

from __future__ import annotations

import re
import sys

import pytest
from drive import (STOP_NOTEBOOK, cell_node, errors, open_notebook, outputs, run_cell, start_cell, streamed_text,
                   text_of, wait_cell, watch_streaming)

pytestmark = pytest.mark.browser


def test_the_live_view_mounts_from_the_built_bundle(page, lab):
    name = lab.notebook("mount.ipynb", [
        "%load_ext reflectnb",
        '%%reflect --model "scripted:Draft one|Shorter please|Draft two|STOP" --rounds 2\nWrite a haiku'])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    view = cell_node(page, 1).locator(".rnb-live")
    view.wait_for(timeout=30_000)  # fails if reflectnb/static/live.js is missing or broken
    assert view.locator(".rnb-status").inner_text() == "completed"
    assert "Draft two" in view.inner_text()
    assert page.console_errors == []


def test_a_broken_bundle_shows_the_widget_error_instead_of_the_view(page, lab):
    """What the mount check above tells apart: a bundle that does not load renders no view, only an error."""
    name = lab.notebook("broken.ipynb", [
        "%load_ext reflectnb\nimport sys\nfrom reflectnb.widgets import LiveView\n"
        "from reflectnb.widgets.bundle import bundle\ngood = bundle('live').read_text()\n"
        "LiveView._esm = good[: len(good) // 2]  # the built bundle cut in half\nprint(sys.executable)",
        '%%reflect --model "scripted:Draft one|STOP" --rounds 1\nWrite a haiku',
        "print(6 * 7)"])
    open_notebook(page, lab, name)
    assert text_of(run_cell(page, 0)).strip() == sys.executable  # the kernel is this environment's Python
    assert errors(run_cell(page, 1)) == []  # the run itself is fine; only its view cannot load
    error = cell_node(page, 1).locator(".jupyter-widgets-error-widget")
    error.wait_for(timeout=30_000)
    assert cell_node(page, 1).locator(".rnb").count() == 0
    error.click()  # ipywidgets' error box shows the JavaScript error when clicked
    assert "SyntaxError" in cell_node(page, 1).inner_text()
    assert any("SyntaxError" in m for m in page.console_errors), page.console_errors
    assert any("Could not create a view" in m for m in page.console_errors), page.console_errors
    assert "42" in text_of(run_cell(page, 2))


def test_tokens_stream_into_the_view_while_the_embedded_model_generates(page, lab):
    name = lab.notebook("stream.ipynb", [
        "%load_ext reflectnb",
        "%%reflect --model smollm2-135m --rounds 1 --max-tokens 48\nExplain in three sentences why the sky is blue."])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    start_cell(page, 1)
    seen = watch_streaming(page, 1)
    wait_cell(page)
    assert len(set(seen)) >= 3 and seen == sorted(seen), f"streamed lengths seen: {seen}"
    view = cell_node(page, 1).locator(".rnb-live")
    assert view.locator(".rnb-status").inner_text() == "completed"
    assert view.locator(".rnb-step").count() >= 2 and streamed_text(page, 1) == ""


def test_the_stop_button_interrupts_the_run_and_the_kernel_stays_usable(page, lab):
    name = lab.notebook("stop.ipynb", STOP_NOTEBOOK)
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    start_cell(page, 1)
    page.wait_for_function("() => [...document.querySelectorAll('.rnb-live .rnb-streaming')]"
                           ".some(n => n.textContent.length > 20)", timeout=120_000)
    cell_node(page, 1).locator(".rnb-stop").click()
    wait_cell(page, timeout=60_000)
    view = cell_node(page, 1).locator(".rnb-live")
    assert view.locator(".rnb-status").inner_text() == "interrupted"
    # Stopped inside the first generation (a 400-token draft of 11 generations), which is kept as a partial step.
    steps = view.locator(".rnb-step").evaluate_all("nodes => nodes.map(n => n.className)")
    assert steps == ["rnb-step draft interrupted"], steps
    assert errors(outputs(page, 1)) == []  # an interrupted run is a result, not a traceback
    table = text_of(run_cell(page, 2))
    assert re.search(r"reflect\s+interrupted", table), table
    assert "42" in text_of(run_cell(page, 3))
