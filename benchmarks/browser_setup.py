"""What the browser benchmarks share: their command line, their printout, and a Chromium page on JupyterLab.

``bench_browse.py`` (kernel side), ``bench_browser.py`` and ``bench_browser_runs.py`` (in
Chromium) take ``--repeats`` and, where they fill a trace store, ``--runs``. The two in
Chromium drive a fresh JupyterLab with the browser tests' server and driver
(``tests/browser/lab_server.py`` and ``drive.py``): importing this module puts that folder on
``sys.path``. Chromium is the Debian package, as in the tests (``REFLECTNB_CHROMIUM`` overrides
its path): Playwright cannot download browsers here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "browser"))

from lab_server import Lab, start_lab, stop_lab  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def arguments(doc: str, repeats: int, runs: int | None = None) -> argparse.Namespace:
    """Parse ``--repeats`` and, when ``runs`` gives its default, ``--runs``; the help is ``doc``'s first line."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if runs is not None:
        parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--repeats", type=int, default=repeats)
    return parser.parse_args()


def print_figures(report: dict) -> None:
    """One ``key: value`` line a figure (floats to 4 digits); nested raw data is left to the JSON file."""
    for key, value in report.items():
        if not isinstance(value, dict):
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


@contextmanager
def lab_page() -> Iterator[tuple[Lab, object]]:
    """Start JupyterLab in a temporary folder and headless Chromium; yield ``(lab, page)``; stop both after."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "root").mkdir()
        lab = start_lab(Path(tmp) / "root", Path(tmp) / "home")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=os.environ.get("REFLECTNB_CHROMIUM", "/usr/bin/chromium"),
                                             args=CHROMIUM_ARGS)
                yield lab, browser.new_page(viewport={"width": 1400, "height": 1000})
                browser.close()
        finally:
            stop_lab(lab)
