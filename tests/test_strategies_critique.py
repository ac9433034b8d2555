"""Step-level critique: the tolerant verdict parser and the actor–critic loop."""

from __future__ import annotations

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies import RunContext, critique, parse_critique
from reflectnb.trace import ListRecorder

SOLUTION = "Let's break it down step by step:\nx = 2\ny = x + 3 = 6\nz = y - 1 = 5\nThe answer is 5"


def verdicts(text: str, solution: str = SOLUTION):
    c = parse_critique(text, solution)
    return [v.correct for v in c.steps], c.first_wrong_step, c.final_correct


def test_three_steps_correct_wrong_correct_and_a_wrong_final_parse_into_verdicts():
    text = ("Step 1: correct - x is given\nStep 2: incorrect - 2 + 3 is 5\nStep 3: correct - follows\n"
            "Step 4: correct\nFinal answer: incorrect - it should be 4")
    c = parse_critique(text, SOLUTION)
    assert [(v.index, v.step_text, v.correct) for v in c.steps[:2]] == [(0, "x = 2", True), (1, "y = x + 3 = 6", False)]
    assert c.steps[1].explanation == "2 + 3 is 5" and c.steps[1].number == 2
    assert (c.first_wrong_step, c.final_correct, c.final_explanation) == (1, False, "it should be 4")


@pytest.mark.parametrize("text, expected", [
    ("**Step 1**: Correct.\n**Step 2** - Wrong, 2+3=5\n### Step 3: ✓\n**Final answer:** Wrong",
     ([True, False, True, None], 1, False)),
    ("1) correct\n2. incorrect: bad sum\n3) The step is right.\nOverall: the answer is not correct",
     ([True, False, True, None], 1, False)),
    ("Step one: there is no error here\nStep two: a mistake in the sum\nStep #3: Correct",
     ([True, False, True, None], 1, None)),
    ("Step 2: incorrect\n", ([None, False, None, None], 1, None)),
    ("I think it is fine.", ([None, None, None, None], None, None)),
    ("- Step 1: valid\n- Step 2: invalid\n- Line 3: erroneous\nConclusion: correct",
     ([True, False, False, None], 1, True)),
])
def test_messy_critiques_parse_tolerantly(text, expected):
    assert verdicts(text) == expected


def test_the_mathcritique_layout_with_repeated_steps_parses_in_order():
    text = ("x = 2\nCorrectness of the step: Correct\nExplanation: given.\n"
            "y = x + 3 = 6\nCorrectness of the step: Wrong\nExplanation: 2 + 3 = 5.\n"
            "Correctness of the final answer: Wrong\nExplanation: so the answer is 4.")
    c = parse_critique(text, SOLUTION)
    assert [v.correct for v in c.steps] == [True, False, None, None]
    assert c.steps[1].explanation == "2 + 3 = 5." and c.final_correct is False


def test_steps_the_critic_names_beyond_the_solution_are_kept_without_text():
    c = parse_critique("Step 1: correct\nStep 3: wrong", "only one line")
    assert [(v.step_text, v.correct) for v in c.steps] == [("only one line", True), ("", None), ("", False)]


def test_the_first_verdict_for_a_step_number_wins():
    assert verdicts("Step 1: correct\nStep 1: wrong")[0][0] is True


def test_a_critic_named_in_the_context_judges_when_no_critic_keyword_is_given():
    actor, critic = ScriptedBackend(["2+2=5\nThe answer is 5", "2+2=4"]), ScriptedBackend(["Step 1: incorrect"])
    critique(RunContext(actor, models={"critic": critic}), "What is 2+2?")
    assert (len(actor.calls), len(critic.calls)) == (2, 1)


def test_the_loop_answers_critiques_and_revises_in_that_order_with_linked_steps():
    model = ScriptedBackend(["x = 2\nThe answer is 5", "Step 1: correct\nStep 2: incorrect - 4",
                             "x = 2\nThe answer is 4"])
    recorder = ListRecorder()
    result = critique(RunContext(model, recorder=recorder), "What is 2+2?")
    assert [(s.kind, s.agent, s.round, s.parent) for s in recorder.steps] == [
        ("answer", "actor", 0, None), ("critique", "critic", 1, 0), ("revise", "actor", 1, 1)]
    assert (result.answer, result.stop_reason, result.first_wrong_step) == ("x = 2\nThe answer is 4", "max_rounds", 1)
    assert recorder.steps[1].attributes["first_wrong_step"] == 1


def test_the_critic_sees_the_question_and_numbered_steps():
    model = ScriptedBackend(["a\nb", "Step 1: correct", "a\nb"])
    critique(model, "Q?")
    critic_prompt = model.prompts[1][-1].content
    assert "Q?" in critic_prompt and "Step 1: a\nStep 2: b" in critic_prompt


def test_the_revise_chat_holds_the_question_the_answer_and_the_critique_verbatim_in_order():
    model = ScriptedBackend(["first answer", "Step 1: wrong - because", "second answer"])
    critique(model, "Q?")
    roles = [m.role for m in model.prompts[2]]
    contents = [m.content for m in model.prompts[2]]
    assert roles == ["user", "assistant", "user"]
    assert "Q?" in contents[0] and contents[1] == "first answer" and "Step 1: wrong - because" in contents[2]


def test_a_separate_critic_backend_does_the_judging():
    actor = ScriptedBackend(["ans", "ans2"])
    critic_model = ScriptedBackend(["Step 1: wrong"])
    critique(actor, "Q", critic=critic_model)
    assert (len(actor.prompts), len(critic_model.prompts)) == (2, 1)


def test_sequential_rounds_critique_the_latest_revision():
    model = ScriptedBackend(["a0", "Step 1: wrong", "a1", "Step 1: wrong", "a2"])
    result = critique(model, "Q", rounds=2)
    assert "Step 1: a1" in model.prompts[3][-1].content
    assert (result.answers, result.rounds) == (["a0", "a1", "a2"], 2)


def test_if_wrong_policy_stops_when_the_critic_approves():
    model = ScriptedBackend(["a0", "Step 1: correct\nFinal answer: correct"])
    result = critique(model, "Q", rounds=3, refine_policy="if_wrong")
    assert (result.stop_reason, result.answer, len(model.prompts)) == ("critic_approved", "a0", 2)


def test_always_policy_revises_even_when_the_critic_approves():
    model = ScriptedBackend(["a0", "Step 1: correct", "a1"])
    result = critique(model, "Q", refine_policy="always")
    assert (result.stop_reason, result.answer) == ("max_rounds", "a1")


def test_each_step_verdict_is_reported_as_a_score_on_the_critique_step():
    recorder = ListRecorder()
    model = ScriptedBackend(["a\nb", "Step 1: correct\nStep 2: wrong - no\nFinal answer: wrong", "c"])
    critique(RunContext(model, recorder=recorder), "Q")
    assert [(s.name, s.value, s.label, s.target_step) for s in recorder.scores] == [
        ("step_correct", 1.0, "step 1: correct", 1), ("step_correct", 0.0, "step 2: incorrect", 1),
        ("final_correct", 0.0, None, 1)]


@pytest.mark.parametrize("kwargs, message", [
    ({"rounds": 0}, r"`rounds` must be a positive integer, got 0"),
    ({"refine_policy": "sometimes"}, r"`refine_policy` must be one of \['always', 'if_wrong'\], got 'sometimes'"),
    ({"critic": "gpt"}, r"`critic` must be a Backend .*got str"),
    ({"templates": {"revise": "Try again"}}, r"template 'revise' for critique must contain the placeholder \{critique\}"),
    ({"templates": {"critic": "{task} {solution}"}}, r"template 'critic' for critique must contain the placeholder \{steps\}"),
])
def test_bad_critique_options_name_the_value(kwargs, message):
    with pytest.raises(OptionError, match=message):
        critique(ScriptedBackend([]), "Q", **kwargs)
