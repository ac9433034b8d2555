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


def _server(tmp_path_factory, prefix: str, log: str, app: str = "jupyterlab"):
    """Start a server (``app="notebook"``: Notebook 7), yield it, stop it and keep its log as ``artifacts/<log>``."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = start_lab(tmp_path_factory.mktemp(f"{prefix}-root"), tmp_path_factory.mktemp(f"{prefix}-home"),
                           app=app)
        try:
            yield server
        finally:
            try:
                stop_lab(server)
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                shutil.copy(server.log_path, ARTIFACTS / log)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _page(browser, server, request):
    """A Chromium page that records console errors and failed requests in ``page.console_errors``.

    After the test: a screenshot into ``artifacts/<test>.png``, then the server's kernels are shut down.
    """
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
            server.shutdown_kernels()
        except OSError as exc:  # the server itself died: the test has failed already, say why once
            warnings.warn(f"could not shut the test's kernels down: {exc}", stacklevel=1)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    yield from _server(tmp_path_factory, "lab", "lab.log")


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
    yield from _page(browser, lab, request)


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory):
    """A Jupyter Notebook 7 server (``python -m notebook``), set up as the ``lab`` fixture's JupyterLab is."""
    yield from _server(tmp_path_factory, "nb7", "notebook7.log", app="notebook")


@pytest.fixture
def nb7_page(browser, notebook7, request):
    """A Chromium page for the Notebook 7 server, as the ``page`` fixture's for JupyterLab."""
    yield from _page(browser, notebook7, request)
