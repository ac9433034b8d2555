"""What the browser tests leave for the docs site: executed teaching notebooks and screenshots of each view.

Both go under ``build/docs-from-tests/`` (``REFLECTNB_DOCS_FROM_TESTS`` moves it), which the docs hook
``docs/hooks/from_tests.py`` reads when the site is built: ``notebooks/<name>.ipynb`` as JupyterLab saved
it after the run (outputs included), ``gallery/<view>.png`` as Playwright saw the view's element.
Nothing here is drawn or edited by hand; a file is only ever written by a test that has just passed
its checks on what it shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def folder() -> Path:
    return Path(os.environ.get("REFLECTNB_DOCS_FROM_TESTS") or ROOT / "build" / "docs-from-tests")


def keep_executed_notebook(saved: Path, name: str) -> Path:
    """Copy the notebook JupyterLab saved after running it to ``notebooks/<name>`` for the docs."""
    target = folder() / "notebooks" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(saved, target)
    return target


def screenshot(locator, view: str) -> Path:
    """Playwright's screenshot of one view's element, as ``gallery/<view>.png`` for the docs' gallery page."""
    target = folder() / "gallery" / f"{view}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page, size = locator.page, locator.page.viewport_size
    page.add_style_tag(content=".Toastify, .Toastify__toast-container { display: none !important; }")  # pop-ups
    # a tree or browser view has drawn once it says "ready"; other views are plain DOM, drawn when mounted
    page.wait_for_function("(el) => !el.dataset.state || el.dataset.state === 'ready'",
                           arg=locator.element_handle(), timeout=30_000)
    height = locator.evaluate("(el) => el.getBoundingClientRect().height")
    if height + 300 > size["height"]:  # a view taller than the window would be cut by Lab's panel and status bar
        page.set_viewport_size({"width": size["width"], "height": int(height) + 300})
    try:
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(target), animations="disabled")
    finally:
        page.set_viewport_size(size)
    return target
