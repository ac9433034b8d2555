"""A pytest plugin: a test that uses the embedded model must say so with ``@pytest.mark.model``.

``-m "not model"`` is the quick run; it only stays quick (and honest about what it
covers) if every test that loads SmolLM2 carries the marker. This plugin fails a
test that is not marked ``model`` yet

* requests a fixture that holds the embedded model (``smol_path``, ``smol_backend``,
  ``smol_tokenizer``), or
* asks for it while it runs or sets up: ``load_model("smollm2-135m")`` (any dtype, a cache
  hit included) or ``reflectnb.backends.embedded.ensure_converted()``.

Calls are seen wherever the name was imported from: ``load_model`` always looks its cache
up in ``reflectnb.backends._LOADED`` (replaced here by a dict that records the lookups), and
``ensure_converted`` is wrapped in its module, from which every caller imports it at call
time. Kernels started in subprocesses are out of its sight. ``tests/conftest.py`` loads it;
``tests/test_model_marker.py`` runs it on a throwaway test file.
"""

from __future__ import annotations

import functools

import pytest

MODEL_FIXTURES = frozenset({"smol_path", "smol_backend", "smol_tokenizer"})
EMBEDDED = "smollm2-135m"
_USES: list[str] = []  # what the current test did that needs the model


class _RecordingCache(dict):
    """``load_model``'s cache of loaded backends; notes every lookup of the embedded model."""

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and key.split(" [")[0] == EMBEDDED:  # "smollm2-135m [bfloat16]" too
            _USES.append(f"load_model({EMBEDDED!r})")
        return super().__contains__(key)


def _install() -> None:
    from reflectnb import backends
    from reflectnb.backends import embedded

    if not isinstance(backends._LOADED, dict):  # pragma: no cover - guards the guard
        raise RuntimeError("tests/model_guard.py: reflectnb.backends._LOADED is no longer a dict; update the guard")
    if not isinstance(backends._LOADED, _RecordingCache):
        backends._LOADED = _RecordingCache(backends._LOADED)
    if not getattr(embedded.ensure_converted, "_model_guard", False):
        original = embedded.ensure_converted

        @functools.wraps(original)
        def ensure_converted(*args, **kwargs):
            _USES.append("ensure_converted()")
            return original(*args, **kwargs)

        ensure_converted._model_guard = True
        embedded.ensure_converted = ensure_converted


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "model: uses the real embedded model (slower)")
    _install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    _USES.clear()  # fixtures set up for this test count as this test's uses
    if item.get_closest_marker("model") is None:
        held = sorted(MODEL_FIXTURES & set(getattr(item, "fixturenames", ())))
        if held:
            pytest.fail(f"{item.name} uses the embedded model (fixture {', '.join(held)}) but is not marked: "
                        "add @pytest.mark.model (or `pytestmark = pytest.mark.model` for the whole file)",
                        pytrace=False)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    if _USES and item.get_closest_marker("model") is None:
        pytest.fail(f"{item.name} loaded the embedded model ({_USES[0]}) but is not marked: "
                    "add @pytest.mark.model (or `pytestmark = pytest.mark.model` for the whole file)",
                    pytrace=False)
    return result
