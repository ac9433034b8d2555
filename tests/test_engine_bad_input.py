"""Bad input for local engines and optional packages (issue #14): one clear message, before any model loads."""

from __future__ import annotations

import sys

import pytest

from reflectnb.backends import load_model
from reflectnb.errors import OptionError
from reflectnb.evaluate.tasks import load_tasks


@pytest.mark.parametrize("engine", ["llama.cpp", "onnxruntime-genai", "FAST"])
def test_an_engine_that_is_not_built_in_is_refused_naming_the_engines_there_are(engine):
    with pytest.raises(OptionError, match=rf"^`engine` must be one of fast, transformers; got '{engine}'$"):
        load_model("hf:/no/such/model", engine=engine)


def test_a_dtype_that_is_not_offered_is_refused_before_loading():
    with pytest.raises(OptionError, match=r"^`dtype` must be one of float32, bfloat16, float16; got 'int8'$"):
        load_model("hf:/no/such/model", dtype="int8")


def test_reasoning_gym_task_sets_without_the_package_name_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # what an uninstalled package looks like to import
    with pytest.raises(OptionError, match=r"^reasoning-gym task sets need the 'reasoning-gym' package: "
                                          r"pip install reasoning-gym$"):
        load_tasks("rg:leg_counting", n=2)
