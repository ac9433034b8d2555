"""The strategy spec: one declaration gives the Python function, the magic, the eval method, the view and the docs.

The acceptance example lives in ``tests/plugins/best_of_n_verified.py`` (one file, under 40 lines); nothing
else in the project mentions it, so every surface below has to come from the spec.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies import spec as registry
from magic_shell import clean_shell

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "best_of_n_verified.py"


@pytest.fixture()
def plugin():
    """The plugin module, imported fresh (registering the method), and unregistered afterwards."""
    sys.modules.pop("plugins.best_of_n_verified", None)
    module = importlib.import_module("plugins.best_of_n_verified")
    yield module
    registry._REGISTRY.pop("best_of_n_verified", None)


def sevens(n=3):
    return ScriptedBackend(["The answer is 7."] * n + ["The answer is 8."] * n)


def test_the_example_method_is_one_file_of_at_most_40_lines_mentioned_nowhere_else():
    assert len(PLUGIN.read_text(encoding="utf-8").splitlines()) <= 40
    others = [p for p in (ROOT / "reflectnb").rglob("*.py") if "best_of_n_verified" in p.read_text(encoding="utf-8")]
    assert others == []


def test_a_registered_method_runs_as_a_python_function_with_its_options_in_the_signature(plugin, trace_file):
    signature = inspect.signature(reflectnb.best_of_n_verified)
    assert signature.parameters["n"].default == 3 and "verifier" in signature.parameters
    result = reflectnb.best_of_n_verified("What is 3 + 4?", model=sevens(), n=3, verifier=lambda a: a == "7")
    assert result.answer == "7" and result.stop_reason == "verified" and len(result.steps) == 3
    from reflectnb.store import open_store

    rows = open_store().sql(f"SELECT kind, final_answer FROM runs WHERE run_id = '{result.run_id}'")
    assert rows.to_dict("records") == [{"kind": "best_of_n_verified", "final_answer": "7"}]


def test_its_options_are_checked_in_one_place_for_every_surface(plugin):
    with pytest.raises(OptionError, match=r"reflectnb.best_of_n_verified: `n` must be a positive integer, got 0"):
        reflectnb.best_of_n_verified("q", model=sevens(), n=0, trace=False)
    with pytest.raises(OptionError, match=r"no option 'rounds'; its options: n, verifier"):
        reflectnb.best_of_n_verified("q", model=sevens(), rounds=2, trace=False)
    with pytest.raises(OptionError, match=r"this run could make about 20,000 model calls"):
        reflectnb.best_of_n_verified("q", model=sevens(), n=20_000, trace=False)


def test_it_runs_as_a_cell_magic_and_its_help_lists_its_options(plugin, trace_file):
    with clean_shell() as shell:
        shell.user_ns["bot"] = sevens(2)
        shell.user_ns["is_seven"] = lambda a: a == "7"
        shell.run_cell_magic("best_of_n_verified", "-m bot -n 2 --verifier is_seven --no-stream -o res",
                             "What is 3 + 4?")
        assert shell.user_ns["res"].answer == "7"
        help_text = shell.magics_manager.magics["cell"]["best_of_n_verified"].getdoc()
        assert "-n N, --n N" in help_text and "--verifier VAR" in help_text and "answers to sample" in help_text
        from IPython.core.error import UsageError

        with pytest.raises(UsageError, match=r"%%best_of_n_verified: argument -n/--n: must be a positive integer"):
            shell.run_cell_magic("best_of_n_verified", "-m bot -n 0", "q")


def test_a_method_registered_after_load_ext_gets_its_magic_at_once(trace_file):
    with clean_shell() as shell:
        sys.modules.pop("plugins.best_of_n_verified", None)
        importlib.import_module("plugins.best_of_n_verified")
        try:
            assert "best_of_n_verified" in shell.magics_manager.magics["cell"]
        finally:
            registry._REGISTRY.pop("best_of_n_verified", None)


def test_it_is_a_reflect_eval_method(plugin, trace_file):
    from reflectnb.evaluate.compare import compare

    rows = [{"question": "What is 3 + 4?", "answer": "7"}, {"question": "What is 4 + 4?", "answer": "8"}]
    model = ScriptedBackend(lambda prompt, i: "The answer is 7.")
    result = compare(rows, ["baseline", "best_of_n_verified(n=2)"], model=model, progress=False, trace=False)
    summary = result.summary()
    accuracy = dict(zip(summary["method"], summary["accuracy"]))
    assert accuracy == {"baseline": 0.5, "best_of_n_verified(n=2)": 0.5}
    with pytest.raises(OptionError, match=r"`n` must be a positive integer, got 0"):
        compare(rows, ["best_of_n_verified(n=0)"], model=model, progress=False, trace=False)


def test_its_live_view_uses_the_layout_the_spec_names(plugin):
    from reflectnb.widgets import LiveView

    view = LiveView(kind=registry.get_strategy("best_of_n_verified").view)
    reflectnb.best_of_n_verified("What is 3 + 4?", model=sevens(), n=3, live=view, trace=False)
    assert view.kind == "debate" and [s["agent"] for s in view.steps] == ["sample 1", "sample 2", "sample 3"]
    assert view.status == "completed" and view.final_answer == "7"


def test_it_appears_in_the_docs_method_and_magic_references(plugin):
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        strategies_page = importlib.import_module("strategies").strategy_reference_markdown()
        magics_page = importlib.import_module("reference").magic_reference_markdown()
    finally:
        sys.path.remove(str(ROOT / "docs" / "hooks"))
    assert "## best_of_n_verified" in strategies_page and "reflectnb.best_of_n_verified(task, n=3" in strategies_page
    assert "%%best_of_n_verified" in magics_page and "answers to sample" in magics_page


def test_registering_a_name_twice_is_refused_unless_replace_is_given(plugin):
    with pytest.raises(OptionError, match="a strategy named 'best_of_n_verified' is already registered"):
        registry.register_strategy("best_of_n_verified", options=plugin.Options)(lambda ctx, task, o: None)


def test_a_plugin_package_registers_through_the_entry_point_group(monkeypatch):
    from importlib import metadata

    class Entry:
        name, value = "demo", "demo_plugin:register"

        def load(self):
            return lambda: registry.register_strategy("entry_point_demo", summary="From a plugin.")(
                lambda ctx, task, o: None)

    monkeypatch.setattr(metadata, "entry_points", lambda group: [Entry()] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setitem(registry._LOADED, "entry_points", False)
    try:
        assert "entry_point_demo" in registry.strategies()
    finally:
        registry._REGISTRY.pop("entry_point_demo", None)


def test_a_broken_plugin_warns_and_leaves_the_built_in_methods(monkeypatch):
    from importlib import metadata

    class Broken:
        name, value = "broken", "broken_plugin:register"

        def load(self):
            raise ImportError("no module named broken_plugin")

    monkeypatch.setattr(metadata, "entry_points", lambda group: [Broken()])
    monkeypatch.setitem(registry._LOADED, "entry_points", False)
    with pytest.warns(UserWarning, match="the strategy plugin 'broken'.*failed to load: ImportError"):
        known = registry.strategies()
    assert {"reflect", "critique", "debate", "tree"} <= set(known)


def test_every_built_in_method_has_one_default_for_every_surface():
    reflect = registry.get_strategy("reflect")
    assert inspect.signature(reflectnb.reflect).parameters["rounds"].default == 3
    from reflectnb.evaluate.methods import parse_method

    assert parse_method("reflect").option("rounds") == reflect.options_from({}).rounds == 3


def test_the_python_api_refuses_a_run_that_could_make_too_many_model_calls_before_loading_a_model():
    with pytest.raises(OptionError, match=r"reflectnb.reflect: this run could make about 2,000,000,001 model calls "
                                          r"\(rounds 1,000,000,000: 1 draft \+ 2 calls per round\); lower rounds, or pass a larger max_generations"):
        reflectnb.reflect("Write a line.", model="no-such-model", rounds=10**9)
    with pytest.raises(OptionError, match=r"about 31 model calls"):
        reflectnb.debate("Is 91 prime?", model="no-such-model", agents=5, rounds=6, max_generations=30)


def test_option_names_every_run_already_takes_are_refused_at_registration():
    from dataclasses import dataclass

    @dataclass
    class Clashing:
        temperature: float = registry.option(0.7, "a second temperature")

    with pytest.raises(OptionError, match=r"options may not be called \['temperature'\]"):
        registry.register_strategy("clashing", options=Clashing)(lambda ctx, task, o: None)
    assert "clashing" not in registry.strategies()
