"""Driving a notebook in JupyterLab from a test: open, run cells, read outputs.

Cells run through JupyterLab's command registry (``notebook:run-cell``, what
Shift+Enter does); outputs are read from the notebook model as nbformat JSON.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab_server import Lab

# -- driving notebooks ------------------------------------------------------------------------------------

KERNEL_IDLE = ("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
               " && window.jupyterapp.shell.currentWidget.sessionContext"
               " && window.jupyterapp.shell.currentWidget.sessionContext.session"
               " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
               " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'")


def open_notebook(page, lab: Lab, name: str, timeout: float = 120_000, path: str = "lab/tree") -> None:
    """Open a notebook and wait until its kernel is idle.

    ``path`` is where the front-end serves documents: JupyterLab's ``lab/tree`` (opened with ``&reset``,
    so a workspace an earlier test left does not reopen its documents) or Notebook 7's ``notebooks``.
    """
    reset = "&reset" if path == "lab/tree" else ""
    page.goto(f"{lab.url}/{path}/{name}?token={lab.token}{reset}")
    page.wait_for_function(KERNEL_IDLE, timeout=timeout)


def cell_count(page) -> int:
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")


def start_cell(page, index: int) -> None:
    """Start running cell ``index`` (as Shift+Enter would) without waiting for it."""
    page.evaluate("""(i) => { const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = i;
        window.__rnbDone = false;
        const done = (ok) => { window.__rnbOk = ok; window.__rnbDone = true; };
        window.jupyterapp.commands.execute('notebook:run-cell')
          .then((ok) => done(ok !== false), () => done(false)); }""",
                  index)


def wait_cell(page, timeout: float = 300_000) -> bool:
    """Wait until the cell started last has finished and the kernel is idle again; whether it succeeded."""
    page.wait_for_function("""() => window.__rnbDone === true
        && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'""",
                           timeout=timeout, polling=200)
    return page.evaluate("() => window.__rnbOk")


def run_cell(page, index: int, timeout: float = 300_000) -> list[dict]:
    """Run cell ``index``, wait for it, return its outputs (nbformat JSON).

    A cell whose execute reply is an error but that left no error output (a magic's ``UsageError``
    is only printed to stderr) gets one added, so ``errors()`` sees every failed cell.
    """
    start_cell(page, index)
    ok = wait_cell(page, timeout)
    outs = outputs(page, index)
    if not ok and not errors(outs):
        stderr = "".join("".join(o.get("text", "")) for o in outs if o.get("name") == "stderr").strip()
        outs.append({"output_type": "error", "ename": "CellFailed",
                     "evalue": stderr or "the cell's execute reply was an error"})
    return outs


def outputs(page, index: int) -> list[dict]:
    return page.evaluate("""(i) => { const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
        return cell.model.outputs ? cell.model.outputs.toJSON() : []; }""", index)  # markdown cells have none


def streamed_text(page, index: int) -> str:
    """The text cell ``index``'s live view is streaming now ("" when it streams nothing)."""
    box = cell_node(page, index).locator(".rnb-live .rnb-streaming")
    return box.inner_text() if box.count() else ""


def watch_streaming(page, index: int, lengths: int = 3, timeout: float = 240) -> list[int]:
    """Poll the started cell ``index``'s streamed text; the lengths it grew through, in the order seen.

    Stops once ``lengths`` different ones are seen, the cell has finished (``start_cell``'s flag) or
    ``timeout`` seconds have passed; the caller asserts on what was seen.
    """
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(seen) < lengths and not page.evaluate("() => window.__rnbDone"):
        length = len(streamed_text(page, index))
        if length and (not seen or length > seen[-1]):
            seen.append(length)
        time.sleep(0.05)
    return seen


def cell_node(page, index: int):
    """A locator for cell ``index``'s output area."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-Cell-outputArea")


def errors(outs: list[dict]) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in outs if o.get("output_type") == "error"]


def text_of(outs: list[dict]) -> str:
    parts = []
    for o in outs:
        if o.get("output_type") == "stream":
            parts.append("".join(o.get("text", "")))
        for value in (o.get("data") or {}).values():
            if isinstance(value, (str, list)):
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


# A notebook with a long live run (five rounds of 400 tokens: time to watch it stream and press stop), a query
# for the run's stored status, and a cell that shows the kernel is still usable; the live-view tests share it.
STOP_NOTEBOOK = [
    "%load_ext reflectnb",
    "%%reflect --model smollm2-135m --rounds 5 --max-tokens 400\nWrite a long story about a lighthouse keeper.",
    "%reflect_sql SELECT kind, status FROM runs ORDER BY started_at DESC LIMIT 1",
    "print(6 * 7)"]
