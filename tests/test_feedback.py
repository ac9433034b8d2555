"""Feedback sources: the calculator, the Python sandbox, checkers, the oracle, and the loops that use them."""

from __future__ import annotations

import os

import pytest

from reflectnb.errors import OptionError
from reflectnb.strategies.calc import CalcError, check_text, evaluate
from reflectnb.strategies.feedback import (SOURCES, Feedback, item_checker, make_feedback, parse_feedback,
                                           python_feedback)
from reflectnb.strategies.sandbox import Limits, run_python

# Generous wall time: a loaded CI machine can take seconds to start a child, and only the hang test is about time
FAST = Limits(seconds=30.0, memory_bytes=256 * 2**20, output_bytes=4096)
HANG = Limits(seconds=1.0, memory_bytes=256 * 2**20, output_bytes=4096)


# --- the calculator ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, value", [("3 + 4 * (2 - 5) ** 2", 39), ("7 / 2", 3.5), ("7 // 2", 3),
                                               ("-3 % 5", 2), ("2 ** -1", 0.5), ("- -4", 4)])
def test_the_calculator_computes_arithmetic(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression, why", [
    ("__import__('os').system('true')", "not Call"), ("x + 1", "not Name"), ("(1).real", "not Attribute"),
    ("'a' * 3", "not Constant"), ("1 < 2", "not Compare"), ("2 ** 10 ** 9", r"exponent 1e\+09 is too large"),
    ("9 ** 9 ** 9", "is too large"), ("1 / 0", "division by zero"), ("10.0 ** 400", "too large"),
    ("1" + "+1" * 150, "longer than 200 characters"), ("(-8) ** 0.5", "not a real number")])
def test_the_calculator_refuses_names_calls_and_huge_results(expression, why):
    with pytest.raises(CalcError, match=why):
        evaluate(expression)


@pytest.mark.parametrize("text, described", [
    ("3 + 4 = 8", ["3 + 4 = 7, not 8"]),
    ("So 12 × 3 = 36, and 36 ÷ 4 = 9.", ["12 * 3 = 36 (correct)", "36 / 4 = 9 (correct)"]),
    ("1,000 / 8 = 125.", ["1000 / 8 = 125 (correct)"]),
    ("Step 2: 3 x 4 = 13", ["3 * 4 = 12, not 13"]),
    ("10 / 3 = 3.33", ["10 / 3 = 3.33 (correct)"]),
    ("2x + 3 = 7 and x - 3 * 2 = 0", []),
    ("The answer is 4", []),
])
def test_calculations_are_found_in_free_text_and_algebra_is_left_alone(text, described):
    assert [c.describe() for c in check_text(text)] == described


def test_calc_feedback_says_which_calculation_is_wrong_and_lists_what_it_checked():
    fb = make_feedback("tool:calc")("Add them", "2 * 5 = 10\n3 + 4 = 8\nThe answer is 8")
    assert (fb.source, fb.verdict, fb.failed) == ("tool:calc", "wrong", False)
    assert fb.message == "Calculator check of 2 calculations: 3 + 4 = 7, not 8."
    assert fb.detail["checked"] == ["2 * 5 = 10 (correct)", "3 + 4 = 7, not 8"]


def test_calc_feedback_is_right_when_all_arithmetic_holds_and_silent_without_any():
    assert make_feedback("tool:calc")("t", "3 + 4 = 7").verdict == "right"
    none = make_feedback("tool:calc")("t", "seven")
    assert (none.verdict, none.message) == (None, "Calculator check: found no calculation to check (write each "
                                                  "one as, e.g., 3 + 4 = 7).")


# --- the Python sandbox -----------------------------------------------------------------------------------

def test_the_sandbox_runs_code_and_returns_its_output():
    run = run_python("print(6 * 7)", FAST)
    assert (run.returncode, run.output, run.limit, run.ok) == (0, "42\n", None, True)


def test_the_sandbox_stops_a_hang_at_the_time_limit():
    run = run_python("while True:\n    pass", HANG)
    assert run.limit == "time" and not run.ok and run.seconds < 10


def test_the_sandbox_stops_a_memory_hog_at_the_memory_limit():
    # 100 MB at a time reaches the 256 MB limit in three steps, long before the wall limit
    run = run_python("hog = []\nwhile True:\n    hog.append(' ' * 10**8)", FAST)
    assert run.limit == "memory" and "MemoryError" in run.output


def test_the_sandbox_cuts_a_flood_of_output_at_the_byte_limit():
    run = run_python("while True:\n    print('spam' * 100)", FAST)
    assert (run.limit, run.truncated, len(run.output.encode())) == ("output", True, 4096)


def test_the_child_inherits_no_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("REFLECTNB_FAKE_API_KEY", "sk-not-for-children")
    run = run_python("import os\nprint(sorted(os.environ))\nprint(os.environ.get('REFLECTNB_FAKE_API_KEY'))", FAST)
    assert run.output == "['LANG', 'PATH']\nNone\n"
    assert os.environ["REFLECTNB_FAKE_API_KEY"] == "sk-not-for-children"


def test_the_child_starts_in_an_empty_working_folder_that_is_removed_afterwards():
    run = run_python("import os\nprint(os.listdir('.'))\nprint(os.getcwd())", FAST)
    listing, folder = run.output.splitlines()
    assert listing == "[]" and not os.path.exists(folder)


def test_a_traceback_names_the_script_not_the_temporary_folder():
    run = run_python("raise ValueError('boom')", FAST)
    assert run.returncode == 1 and 'File "answer.py", line 1' in run.output and "reflectnb-python-" not in run.output


@pytest.mark.parametrize("code, limit, words", [
    ("while True:\n    pass", "time", "the time limit (1 s)"),
    ("x = bytearray(2**40)", "memory", "the memory limit (256 MB)"),
    ("while True:\n    print('x' * 99)", "output", "the output limit (4096 bytes)")])
def test_a_tool_that_hits_a_limit_is_a_failed_feedback_naming_the_limit(code, limit, words):
    fb = python_feedback("t", f"Here:\n```python\n{code}\n```", HANG if limit == "time" else FAST)
    assert (fb.failed, fb.verdict, fb.detail["limit"]) == (True, None, limit)
    assert fb.message.startswith(f"Python check failed: the code was stopped at {words}.")


def test_python_feedback_runs_every_block_in_order_and_a_traceback_is_wrong():
    fb = python_feedback("t", "```python\nx = 6\n```\nthen\n```py\nprint(x * 7)\n```", FAST)
    assert (fb.verdict, fb.failed, fb.message) == (None, False,
                                                   "Python check: the code exited with code 0. Output:\n42")
    bad = python_feedback("t", "```python\n1 / 0\n```", FAST)
    assert bad.verdict == "wrong" and bad.message.endswith("ZeroDivisionError: division by zero")


def test_python_feedback_without_code_says_so():
    fb = python_feedback("t", "The answer is 4")
    assert (fb.verdict, fb.failed, fb.message) == (None, False, "Python check: the answer has no ```python code "
                                                                "block to run.")


@pytest.mark.parametrize("field, value", [("seconds", 0), ("memory_bytes", -1), ("output_bytes", "8k")])
def test_bad_sandbox_limits_are_refused(field, value):
    with pytest.raises(OptionError, match=f"sandbox limit `{field}` must be a positive number"):
        Limits(**{field: value})


# --- checkers and the oracle ------------------------------------------------------------------------------

@pytest.mark.parametrize("returned, verdict, message", [
    (True, "right", "The checker says the answer is right."),
    (False, "wrong", "The checker says the answer is wrong."),
    ((False, "2 of 3 tests failed"), "wrong", "The checker says the answer is wrong: 2 of 3 tests failed"),
    (0.5, "wrong", "The checker says the answer is wrong: partial score 0.5"),
    (1.0, "right", "The checker says the answer is right.")])
def test_a_checker_gives_right_or_wrong_with_its_message(returned, verdict, message):
    fb = make_feedback("checker", checker=lambda answer: returned)("t", "4")
    assert (fb.source, fb.verdict, fb.message, fb.failed) == ("checker", verdict, message, False)


def test_a_checker_that_raises_is_a_failed_feedback_with_the_error():
    def broken(answer):
        raise KeyError("entry")

    fb = make_feedback("checker", checker=broken)("t", "4")
    assert (fb.failed, fb.verdict, fb.message) == (True, None, "The checker failed (KeyError: 'entry').")


def test_a_checker_that_returns_nonsense_is_a_failed_feedback():
    fb = make_feedback("checker", checker=lambda answer: "yes")("t", "4")
    assert fb.failed and "it returned 'yes'; a checker returns a bool, a score or (bool, message)" in fb.message


def test_an_evaluation_checker_reads_the_answer_first_and_an_unanswered_text_is_wrong():
    from reflectnb.evaluate.tasks import load_tasks
    from reflectnb.strategies.voting import extract_answer

    tasks = load_tasks([{"question": "2+2?", "answer": "4"}])
    verify = item_checker(tasks.checker, tasks.items[0], lambda text: extract_answer(text, "auto"))
    assert verify("so 2+2 is 4. The answer is 4") == (True, "the final answer read was '4'")
    assert verify("I am not sure") == (False, "no final answer found (end with a line 'The answer is ...')")


def test_the_oracle_gives_only_the_right_or_wrong_bit_and_marks_itself_an_upper_bound():
    oracle = make_feedback("oracle", reference="7")
    wrong, right = oracle("3 + 4?", "3 + 4 = 8. The answer is 8"), oracle("3 + 4?", "The answer is 7.")
    assert (wrong.verdict, wrong.message, right.verdict, right.message) == \
        ("wrong", "The answer is wrong.", "right", "The answer is right.")
    assert wrong.attributes() == {"feedback_source": "oracle", "verdict": "wrong", "failed": False,
                                  "upper_bound": True}


@pytest.mark.parametrize("reference", [None, "", "  "])
def test_the_oracle_without_an_answer_key_is_a_clear_error(reference):
    with pytest.raises(OptionError, match=r"feedback='oracle' needs the answer key: pass reference=<the right "
                                          r"answer> \(--reference in a magic; an evaluation passes each item's "
                                          r"answer\); this task has none"):
        make_feedback("oracle", reference=reference)


def test_the_checker_source_without_a_verifier_is_a_clear_error():
    with pytest.raises(OptionError, match="feedback='checker' needs a verifier: pass checker=fn"):
        make_feedback("checker")


def test_feedback_specs_parse_and_an_unknown_one_lists_the_sources():
    assert [parse_feedback(s) for s in SOURCES] == list(SOURCES) and make_feedback("self") is None
    with pytest.raises(OptionError, match="unknown feedback source 'tool:bash'; use one of self, tool:calc, "
                                          "tool:python, checker, oracle"):
        parse_feedback("tool:bash")


def test_feedback_attributes_name_the_source_verdict_and_failure():
    assert Feedback("tool:calc", "right", "ok").attributes() == {"feedback_source": "tool:calc",
                                                                 "verdict": "right", "failed": False}


# --- the loops with each source ---------------------------------------------------------------------------

def traced(responses):
    """A scripted model and a context that records every step."""
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.strategies.context import RunContext
    from reflectnb.trace import ListRecorder

    model, recorder = ScriptedBackend(responses), ListRecorder()
    return model, recorder, RunContext(model, recorder=recorder)


def feedback_steps(recorder, kind="feedback"):
    return [s for s in recorder.steps if s.kind == kind]


def test_reflect_with_the_calculator_asks_the_model_only_to_draft_and_refine():
    from reflectnb.strategies import reflect

    model, recorder, ctx = traced(["3 + 4 = 8\nThe answer is 8", "3 + 4 = 7\nThe answer is 7"])
    result = reflect(ctx, "What is 3 + 4?", rounds=3, feedback="tool:calc")
    assert [s.kind for s in recorder.steps] == ["draft", "feedback", "refine", "feedback"]
    assert (len(model.prompts), result.stop_reason, result.answer) == (2, "feedback_stop", "3 + 4 = 7\nThe answer is 7")
    assert "Feedback:\nCalculator check of 1 calculation: 3 + 4 = 7, not 8." in model.prompts[1][-1].content
    first, last = feedback_steps(recorder)
    assert first.attributes == {"feedback_source": "tool:calc", "verdict": "wrong", "failed": False}
    assert last.attributes == {"feedback_source": "tool:calc", "verdict": "right", "failed": False,
                               "stop_signal": True}
    assert (first.agent, first.generation, first.parent, result.feedback) == ("tool:calc", None, 0, "tool:calc")


def test_reflect_with_self_feedback_records_its_source_and_still_asks_the_model():
    from reflectnb.strategies import reflect

    model, recorder, ctx = traced(["y0", "f1", "y1"])
    result = reflect(ctx, "task", rounds=1)
    assert (len(model.prompts), result.feedbacks, result.feedback) == (3, ["f1"], "self")
    assert feedback_steps(recorder)[0].attributes == {"feedback_source": "self"}


def test_reflect_goes_on_after_a_tool_that_hits_a_limit():
    from reflectnb.strategies import reflect

    hog = "```python\nx = bytearray(2**40)\n```"
    model, recorder, ctx = traced([hog, "The answer is 4"])
    result = reflect(ctx, "task", rounds=1, feedback=lambda task, text: python_feedback(task, text, FAST))
    step = feedback_steps(recorder)[0]
    assert (step.attributes["failed"], step.attributes["verdict"], result.stop_reason) == (True, None, "max_rounds")
    assert "the code was stopped at the memory limit (256 MB)" in model.prompts[1][-1].content
    assert result.answer == "The answer is 4"


def test_reflect_with_a_checker_stops_when_it_says_right():
    from reflectnb.strategies import reflect

    model, recorder, ctx = traced(["The answer is 8", "The answer is 7"])
    result = reflect(ctx, "3 + 4?", rounds=3, feedback="checker",
                     checker=lambda text: (text.endswith("7"), "expected 7"))
    assert [s.attributes["verdict"] for s in feedback_steps(recorder)] == ["wrong", "right"]
    assert result.feedbacks[0] == "The checker says the answer is wrong: expected 7"
    assert (result.stop_reason, len(model.prompts)) == ("feedback_stop", 2)


def test_reflect_goes_on_after_a_checker_that_raises():
    from reflectnb.strategies import reflect

    _, recorder, ctx = traced(["a", "b", "c"])
    result = reflect(ctx, "t", rounds=2, feedback="checker", checker=lambda text: {}["entry"])
    assert [s.attributes["failed"] for s in feedback_steps(recorder)] == [True, True]
    assert (result.stop_reason, result.answers) == ("max_rounds", ["a", "b", "c"])


def test_reflect_with_the_oracle_marks_every_feedback_an_upper_bound():
    from reflectnb.strategies import reflect

    _, recorder, ctx = traced(["The answer is 8", "The answer is 7"])
    result = reflect(ctx, "3 + 4?", rounds=2, feedback="oracle", reference="7")
    assert result.feedbacks == ["The answer is wrong.", "The answer is right."]
    assert all(s.attributes["upper_bound"] for s in feedback_steps(recorder))
    assert ("feedback", "oracle (an upper bound)") in result.summary()


def test_reflect_refuses_the_oracle_without_an_answer_key_before_generating():
    from reflectnb.strategies import reflect

    model, recorder, ctx = traced(["never"])
    with pytest.raises(OptionError, match="feedback='oracle' needs the answer key"):
        reflect(ctx, "3 + 4?", feedback="oracle")
    assert model.prompts == [] and recorder.steps == []


def test_reflect_refuses_a_tone_for_feedback_the_model_does_not_write():
    from reflectnb.strategies import reflect

    with pytest.raises(OptionError, match="tone='strict' colours the model's own feedback; it has no effect "
                                          "with feedback='tool:calc'"):
        reflect(traced(["never"])[2], "t", feedback="tool:calc", tone="strict")


def test_critique_with_the_calculator_judges_each_step_and_approves_right_arithmetic():
    from reflectnb.strategies import critique

    model, recorder, ctx = traced(["3 + 4 = 8\n8 * 2 = 16\nThe answer is 16",
                                   "3 + 4 = 7\n7 * 2 = 14\nThe answer is 14"])
    result = critique(ctx, "(3 + 4) * 2?", rounds=3, refine_policy="if_wrong", feedback="tool:calc")
    assert [s.kind for s in recorder.steps] == ["answer", "critique", "revise", "critique"]
    first = result.critiques[0]
    assert ([v.correct for v in first.steps], first.first_wrong_step, first.final_correct) == \
        ([False, True, None], 0, False)
    assert first.steps[0].explanation == "3 + 4 = 7, not 8"
    assert (result.stop_reason, len(model.prompts), result.critiques[1].final_correct) == ("critic_approved", 2, True)
    step = feedback_steps(recorder, "critique")[0]
    assert (step.agent, step.attributes["feedback_source"], step.attributes["verdict"]) == \
        ("tool:calc", "tool:calc", "wrong")
    assert "3 + 4 = 7, not 8" in model.prompts[1][-1].content


def test_critique_with_the_oracle_revises_from_the_bit_alone():
    from reflectnb.strategies import critique

    model, recorder, ctx = traced(["The answer is 5", "The answer is 4"])
    result = critique(ctx, "2 + 2?", feedback="oracle", reference="4")
    assert (result.critiques[0].text, result.critiques[0].final_correct, result.answer) == \
        ("The answer is wrong.", False, "The answer is 4")
    assert feedback_steps(recorder, "critique")[0].attributes["upper_bound"] is True
    assert "The answer is wrong." in model.prompts[1][-1].content


def test_critique_revises_after_a_failed_feedback_even_if_only_wrong_answers_are_revised():
    from reflectnb.strategies import critique

    _, recorder, ctx = traced(["The answer is 5", "The answer is 4"])
    result = critique(ctx, "2 + 2?", refine_policy="if_wrong", feedback="checker", checker=lambda text: 1 / 0)
    assert [s.kind for s in recorder.steps] == ["answer", "critique", "revise"]
    assert feedback_steps(recorder, "critique")[0].attributes["failed"] is True
    assert result.stop_reason == "max_rounds"


def test_critique_refuses_a_critic_model_that_would_never_be_asked():
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.strategies import critique

    with pytest.raises(OptionError, match="`critic` is not asked when feedback='tool:calc'; leave it out"):
        critique(traced(["never"])[2], "t", critic=ScriptedBackend(["x"]), feedback="tool:calc")


def test_critique_with_self_feedback_records_its_source():
    from reflectnb.strategies import critique

    _, recorder, ctx = traced(["2+2=5\nThe answer is 5", "Step 1: incorrect", "The answer is 4"])
    critique(ctx, "2 + 2?")
    assert feedback_steps(recorder, "critique")[0].attributes["feedback_source"] == "self"


@pytest.mark.model
def test_reflect_with_the_calculator_runs_end_to_end_on_the_embedded_model(smol_backend):
    from reflectnb.backends.base import GenerationParams
    from reflectnb.strategies import reflect
    from reflectnb.strategies.context import RunContext
    from reflectnb.trace import ListRecorder

    recorder = ListRecorder()
    ctx = RunContext(smol_backend, params=GenerationParams(max_new_tokens=12), recorder=recorder)
    result = reflect(ctx, "What is 3 + 4? Show the sum as 3 + 4 = ...", rounds=1, feedback="tool:calc")
    kinds = [s.kind for s in recorder.steps]
    assert kinds[:2] == ["draft", "feedback"] and set(kinds) <= {"draft", "feedback", "refine"}
    step = recorder.steps[1]
    assert step.generation is None and step.attributes["feedback_source"] == "tool:calc"
    assert step.text.startswith("Calculator check") and result.feedbacks == [step.text]
    assert all(s.generation.completion_tokens <= 12 for s in recorder.steps if s.kind != "feedback")


def test_a_source_of_your_own_that_raises_or_returns_nonsense_is_a_failed_feedback():
    from reflectnb.strategies.feedback import run_source

    def broken(task, text):
        raise RuntimeError("no tool today")

    assert run_source(broken, "t", "a") == Feedback("broken", None, "The feedback source failed (RuntimeError: no "
                                                    "tool today).", True, {"error": "RuntimeError: no tool today"})
    odd = run_source(lambda task, text: "fine", "t", "a")
    assert (odd.source, odd.failed, odd.message) == ("<lambda>", True, "The feedback source failed: it returned "
                                                                       "'fine', not a Feedback.")


# --- in an evaluation -------------------------------------------------------------------------------------

def run_eval_item(method, replies, rows=({"id": "q1", "question": "What is 2+2?", "answer": "4"},)):
    from reflectnb.backends.base import GenerationParams
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.evaluate.methods import parse_method, run_item
    from reflectnb.evaluate.tasks import load_tasks
    from reflectnb.trace import ListRecorder

    tasks, model, recorder = load_tasks(list(rows)), ScriptedBackend(replies), ListRecorder()
    outcome = run_item(parse_method(method), model, tasks, tasks.items[0], GenerationParams(max_new_tokens=32),
                       recorder)
    return outcome, model, recorder


def test_an_evaluation_gives_the_checker_source_the_task_sets_checker_for_each_item():
    outcome, model, recorder = run_eval_item("reflect(rounds=3, feedback=checker)",
                                             ["The answer is 5", "The answer is 4"])
    assert [s.text for s in feedback_steps(recorder)] == [
        "The checker says the answer is wrong: the final answer read was '5'",
        "The checker says the answer is right: the final answer read was '4'"]
    assert (outcome.round_answers, outcome.stop_reason, len(model.prompts)) == (["5", "4", "4"], "feedback_stop", 2)


def test_an_evaluation_gives_the_oracle_each_items_answer():
    outcome, _, recorder = run_eval_item("critique(feedback=oracle)", ["The answer is 5", "The answer is 4"])
    step = feedback_steps(recorder, "critique")[0]
    assert (step.text, step.attributes["upper_bound"], outcome.round_answers) == ("The answer is wrong.", True,
                                                                                  ["5", "4"])


def test_the_magic_budget_counts_one_call_per_round_when_a_tool_gives_the_feedback():
    from reflectnb.strategies.spec import get_strategy

    spec = get_strategy("reflect")
    assert spec.estimate(spec.options_from({"rounds": 3, "feedback": "tool:calc"})) == \
        (4, "rounds 3: 1 draft + 1 call per round")
    assert spec.estimate(spec.options_from({"rounds": 3}))[0] == 7


# --- from the magics --------------------------------------------------------------------------------------

@pytest.fixture()
def ip(trace_file):
    from magic_shell import clean_shell

    with clean_shell() as shell:
        yield shell


def test_the_reflect_magic_takes_a_feedback_source_and_the_trace_keeps_where_each_came_from(ip, trace_file):
    import json

    from reflectnb.store import open_store

    ip.run_cell_magic("reflect", "-m 'scripted:3 + 4 = 8|3 + 4 = 7' --feedback tool:calc --no-stream -o res",
                      "What is 3 + 4?")
    res = ip.user_ns["res"]
    assert (res.answer, res.stop_reason, res.feedback) == ("3 + 4 = 7", "feedback_stop", "tool:calc")
    rows = open_store(str(trace_file)).sql(f"SELECT kind, agent, attributes FROM steps WHERE run_id = '{res.run_id}' "
                                           "ORDER BY step_index")
    feedback = [json.loads(a) for k, a in zip(rows.kind, rows.attributes) if k == "feedback"]
    assert [(a["feedback_source"], a["verdict"]) for a in feedback] == [("tool:calc", "wrong"), ("tool:calc", "right")]


def test_the_oracle_from_a_magic_takes_its_answer_and_without_one_is_a_one_line_error(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="feedback='oracle' needs the answer key: pass reference=<the right answer> "
                                         r"\(--reference in a magic"):
        ip.run_cell_magic("critique", "-m 'scripted:The answer is 5' --feedback oracle --no-stream", "2 + 2?")
    ip.run_cell_magic("critique", "-m 'scripted:The answer is 5|The answer is 4' --feedback oracle --reference 4 "
                      "--no-stream -o res", "2 + 2?")
    assert ip.user_ns["res"].critiques[0].text == "The answer is wrong."
    assert ("feedback", "oracle (an upper bound)") in ip.user_ns["res"].summary()


def test_an_unknown_feedback_source_in_a_magic_lists_the_sources(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=r"argument --feedback: must be one of \['self', 'tool:calc', 'tool:python', "
                                         r"'checker', 'oracle'\], got 'tool:bash'"):
        ip.run_cell_magic("reflect", "-m 'scripted:x' --feedback tool:bash --no-stream", "t")


def test_the_checker_source_in_a_magic_names_a_variable_holding_the_verifier(ip):
    ip.user_ns["is_seven"] = lambda text: (text.strip().endswith("7"), "expected 7")
    ip.run_cell_magic("reflect", "-m 'scripted:The answer is 8|The answer is 7' --feedback checker --checker is_seven "
                      "--no-stream --no-trace -o res", "3 + 4?")
    res = ip.user_ns["res"]
    assert res.feedbacks == ["The checker says the answer is wrong: expected 7",
                             "The checker says the answer is right: expected 7"]
    assert res.stop_reason == "feedback_stop"
