"""The default eval id: whatever changes how items are asked or scored starts a new evaluation; nothing else does."""

from __future__ import annotations

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.evaluate import compare, default_eval_id, load_tasks
from reflectnb.evaluate.identity import backend_dtype, callable_identity, rule_identity
from reflectnb.evaluate.tasks import TaskSet

ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]
SETTINGS = {"temperature": 0.0, "max_tokens": 256, "seed": 0}


def doubler(prompt: str, index: int) -> str:
    i = int(prompt.split("What is ")[1].split(" ")[0])
    return f"The answer is {2 * i}"


def same(predicted: str, gold: str) -> bool:
    return predicted == gold


def stripped(predicted: str, gold: str) -> bool:
    return predicted.strip() == gold


def last_word(text: str) -> str:
    return text.split()[-1]


def made(source: str):
    """A function compiled from ``source`` (no file, so its identity falls back to its bytecode)."""
    scope: dict = {}
    exec(source, scope)
    return scope["check"]


def run(model=None, **options):
    model = model or ScriptedBackend(doubler)
    return compare(options.pop("tasks", ROWS), ["baseline"], model=model, progress=False, **options), model


def test_the_same_settings_resume_the_same_evaluation(trace_file):
    first, _ = run(checker=same, extract=last_word)
    again, model = run(checker=same, extract=last_word)
    assert again.eval_id == first.eval_id and model.calls == []


@pytest.mark.parametrize("change", [
    {"checker": "numeric"},
    {"checker": stripped},
    {"extract": "last_number"},
    {"extract": last_word},
    {"tasks": TaskSet("records", load_tasks(ROWS).items, load_tasks(ROWS).checker, instruction="Answer: X")},
], ids=["a built-in checker", "a checker function", "a built-in rule", "a rule function", "the instruction"])
def test_a_different_checker_rule_or_instruction_starts_a_new_evaluation(trace_file, change):
    first, _ = run(checker=same)
    second, model = run(**{"checker": same, **change})
    assert second.eval_id != first.eval_id
    assert sum(len(c.prompts) for c in model.calls) == 3  # every item generated again, none read back


def test_a_different_dtype_starts_a_new_evaluation(trace_file):
    first, _ = run()
    bf16 = ScriptedBackend(doubler)
    bf16.dtype = "bfloat16"  # what a LocalBackend reports through backend.model.dtype
    second, model = run(bf16)
    assert second.eval_id != first.eval_id and len(model.calls) == 1


def test_editing_a_function_changes_its_identity_but_the_same_function_keeps_it():
    one = made("def check(predicted, gold):\n    return predicted == gold\n")
    two = made("def check(predicted, gold):\n    return predicted.lower() == gold\n")
    assert callable_identity(one) != callable_identity(two)
    assert callable_identity(one) == callable_identity(made("def check(predicted, gold):\n    return predicted == gold\n"))
    assert callable_identity(same).split("#")[0].endswith(".same")


def test_built_in_checkers_and_rules_are_named_with_their_settings():
    from reflectnb.evaluate.checkers import Numeric, make_checker

    assert (rule_identity(make_checker("exact")), rule_identity("auto")) == ("exact", "auto")
    assert rule_identity(Numeric(0.5)) != rule_identity(Numeric(0.5, rel_tol=0.1))


def test_a_scripted_backend_has_no_dtype_and_a_model_name_alone_still_gives_an_id():
    assert backend_dtype(ScriptedBackend(doubler)) is None
    tasks = load_tasks(ROWS)
    assert default_eval_id(tasks, "scripted", SETTINGS) == default_eval_id(tasks, ScriptedBackend(doubler), SETTINGS)
    assert default_eval_id(tasks, "scripted", SETTINGS) != default_eval_id(tasks, "scripted", {**SETTINGS, "seed": 1})
