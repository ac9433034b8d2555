"""The one lazy loader: every package's public names resolve, are kept after the first read, and typos say so."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["reflectnb", "reflectnb.decoding", "reflectnb.controllers", "reflectnb.evaluate"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_lazy_name_resolves_to_what_its_table_names(package):
    module = importlib.import_module(package)
    for name, (where, attribute) in module._LAZY.items():
        target = importlib.import_module(where)
        assert getattr(module, name) is (target if attribute is None else getattr(target, attribute)), name
        assert name in vars(module)  # kept: the next read does not go through __getattr__ again


@pytest.mark.parametrize("package", PACKAGES)
def test_an_unknown_name_raises_attribute_error_naming_the_package(package):
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_dir_lists_the_public_names_before_any_is_loaded():
    import reflectnb
    import reflectnb.decoding

    assert {"reflect", "compare", "traces", "load_ipython_extension"} <= set(dir(reflectnb))
    assert dir(reflectnb.decoding) == sorted(reflectnb.decoding._LAZY)


def test_reflectnb_compare_is_the_function_even_after_its_module_was_imported():
    import subprocess
    import sys

    code = ("import reflectnb.evaluate.compare, reflectnb, inspect; "
            "print(inspect.isfunction(reflectnb.compare))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
