"""A real JupyterLab on loopback, driven by headless Debian Chromium through Playwright.

The server (``lab_server.py``) gets a random token, a temporary root and its own
Jupyter dirs; its kernels are this virtual environment's Python. Chromium is the Debian package (``/usr/bin/chromium``,
installed by ``bash scripts/dev.sh test``): Playwright cannot download browsers
here, so it is launched through ``executable_path``. A missing Chromium fails
these tests; it never skips them.

Notebooks are driven through JupyterLab's own command registry
(``--LabApp.expose_app_in_browser`` exposes ``window.jupyterapp``), so a cell
runs exactly as with Shift+Enter; clicks on widgets are real mouse events.
Screenshots of every test land in ``tests/browser/artifacts/``, with the server's
log. After each test its kernels are shut down; a SIGTERM (a CI time limit,
``timeout``) ends the run as Ctrl-C would, so the server and its kernels are
still stopped rather than left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import warnings
from pathlib import Path

import pytest
from lab_server import start_lab, stop_lab

CHROMIUM = os.environ.get("REFLECTNB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.browser


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # pytest then still tears the session fixtures down


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = start_lab(tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home"))
        try:
            yield server
        finally:
            try:
                stop_lab(server)
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                shutil.copy(server.log_path, ARTIFACTS / "lab.log")
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `bash scripts/dev.sh test` (it installs the Debian "
                    "packages chromium and chromium-driver) or set REFLECTNB_CHROMIUM", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
    page.on("requestfailed", lambda r: page.console_errors.append(f"request failed: {r.url}"))  # type: ignore[attr-defined]
    page.on("dialog", lambda d: d.dismiss())
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
        try:
            lab.shutdown_kernels()
        except OSError as exc:  # the server itself died: the test has failed already, say why once
            warnings.warn(f"could not shut the test's kernels down: {exc}", stacklevel=1)


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory):
    """A Jupyter Notebook 7 server (``python -m notebook``), set up as the ``lab`` fixture's JupyterLab is."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = start_lab(tmp_path_factory.mktemp("nb7-root"), tmp_path_factory.mktemp("nb7-home"), app="notebook")
        try:
            yield server
        finally:
            try:
                stop_lab(server)
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                shutil.copy(server.log_path, ARTIFACTS / "notebook7.log")
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def nb7_page(browser, notebook7, request):
    """A Chromium page for the Notebook 7 server: the ``page`` fixture's console log, screenshot and kernel shutdown."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
    page.on("requestfailed", lambda r: page.console_errors.append(f"request failed: {r.url}"))  # type: ignore[attr-defined]
    page.on("dialog", lambda d: d.dismiss())
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
        try:
            notebook7.shutdown_kernels()
        except OSError as exc:
            warnings.warn(f"could not shut the test's kernels down: {exc}", stacklevel=1)
