"""Shared fixtures: the real embedded model, loaded once per test session.

The converted checkpoint lives in the user cache (``REFLECTNB_CACHE`` or
``~/.cache/reflectnb``), so it is converted once per machine, not per run.
Hub access is switched off: nothing in the tests may reach the network.
A test that uses the embedded model without ``@pytest.mark.model`` fails (``model_guard.py``).
``bash scripts/dev.sh test`` runs the suite on two pytest-xdist workers (``--dist loadfile``): each file stays
on one worker, and the browser tests and the docs tests together on one, in order (``pytest_xdist_make_scheduler``).
"""

from __future__ import annotations

import os

import pytest

# The guard's hooks, registered as this conftest's own (see model_guard.py).
from model_guard import pytest_configure, pytest_runtest_call, pytest_runtest_setup  # noqa: F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# How the two xdist workers share the tests (``--dist loadfile``): each file stays on one worker, so its module
# fixtures (a server, the greedy references) are made once, and the browser tests and the docs tests are one unit,
# run in collection order on one worker, because they share one JupyterLab and one Chromium and the docs tests
# build the site from what the browser tests left in build/docs-from-tests/ (after them, not beside them).
# (A custom scheduler, since ``xdist_group`` marks do not reach xdist 3.8's ``loadgroup`` under pytest 9.2.)
SERIAL_UNIT = ("tests/browser/", "tests/test_docs.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesWithBrowserThenDocs(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "browser-then-docs" if nodeid.startswith(SERIAL_UNIT) else super()._split_scope(nodeid)

    return FilesWithBrowserThenDocs(config, log)


@pytest.fixture(scope="session")
def smol_path():
    """Folder of the converted embedded model (converting it on first use)."""
    from reflectnb.backends.embedded import ensure_converted

    return ensure_converted(progress=False)


@pytest.fixture(scope="session")
def smol_backend(smol_path):
    """The embedded model as a LocalBackend (the same object ``load_model`` returns)."""
    from reflectnb.backends import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def smol_tokenizer(smol_backend):
    """The embedded model's tokenizer."""
    return smol_backend.tokenizer


@pytest.fixture()
def trace_file(tmp_path, monkeypatch):
    """A fresh trace database path for this test, also set as REFLECTNB_TRACES."""
    path = tmp_path / "traces.duckdb"
    monkeypatch.setenv("REFLECTNB_TRACES", str(path))
    return path
