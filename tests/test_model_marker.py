"""The model-marker guard (``model_guard.py``) on a throwaway test file, in a pytest subprocess.

The throwaway tests never load weights: converting is a cached no-op, the fixture is a
stand-in with the same name, and the cache hit finds a scripted model filed under the
embedded model's name — the guard judges what a test asks for, not what it gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent

THROWAWAY = textwrap.dedent('''
    import pytest
    from reflectnb import backends
    from reflectnb.backends import embedded, load_model

    backends._LOADED["smollm2-135m"] = load_model("scripted:ok")  # filed, not loaded: see the docstring

    @pytest.fixture()
    def smol_backend():
        return None

    def test_unmarked_conversion():
        embedded.ensure_converted(progress=False)

    def test_unmarked_cache_hit():
        load_model("smollm2-135m")

    def test_unmarked_fixture(smol_backend):
        pass

    @pytest.mark.model
    def test_marked_conversion(smol_backend):
        embedded.ensure_converted(progress=False)
        load_model("smollm2-135m")

    def test_unmarked_scripted_model():
        assert load_model("scripted:hi").generate_one("x").text == "hi"
''')


def test_a_test_that_uses_the_embedded_model_without_the_model_marker_fails(tmp_path):
    (tmp_path / "test_throwaway.py").write_text(THROWAWAY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "model_guard", "-p", "no:cacheprovider", "-rA",
                           "-q", "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout
    lines = {line.split("::")[-1].split(" ")[0]: line.split(" ")[0] for line in out.splitlines() if "::" in line}
    assert lines == {"test_unmarked_conversion": "FAILED", "test_unmarked_cache_hit": "FAILED",
                     "test_unmarked_fixture": "ERROR", "test_marked_conversion": "PASSED",
                     "test_unmarked_scripted_model": "PASSED"}, out + proc.stderr
    assert ("test_unmarked_conversion loaded the embedded model (ensure_converted()) but is not marked: "
            "add @pytest.mark.model") in out
    assert "test_unmarked_cache_hit loaded the embedded model (load_model('smollm2-135m'))" in out
    assert "test_unmarked_fixture uses the embedded model (fixture smol_backend) but is not marked" in out
