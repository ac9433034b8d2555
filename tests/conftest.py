"""Shared fixtures: the real embedded model, loaded once per test session.

The converted checkpoint lives in the user cache (``REFLECTNB_CACHE`` or
``~/.cache/reflectnb``), so it is converted once per machine, not per run.
Hub access is switched off: nothing in the tests may reach the network.
A test that uses the embedded model without ``@pytest.mark.model`` fails (``model_guard.py``).
"""

from __future__ import annotations

import os

import pytest

# The guard's hooks, registered as this conftest's own (see model_guard.py).
from model_guard import pytest_configure, pytest_runtest_call, pytest_runtest_setup  # noqa: F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
