"""Self-Refine (`reflect`) driven by scripted models: order, prompts, stop rules, results."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies import RunContext, reflect
from reflectnb.trace import ListRecorder


def user_text(prompt) -> str:
    return prompt[-1].content


def test_feedback_stop_on_the_first_round_costs_one_feedback_and_keeps_the_draft():
    model = ScriptedBackend(["y0", "Looks right. STOP"])
    result = reflect(model, "task", rounds=4)
    assert (result.answer, result.stop_reason, result.rounds) == ("y0", "feedback_stop", 1)
    assert len(model.prompts) == 2 and result.feedbacks == ["Looks right. STOP"]


def test_never_satisfied_runs_every_round_as_feedback_then_refine():
    model = ScriptedBackend(["y0", "f1", "y1", "f2", "y2", "f3", "y3"])
    recorder = ListRecorder()
    result = reflect(RunContext(model, recorder=recorder), "task", rounds=3)
    assert [s.kind for s in recorder.steps] == ["draft"] + ["feedback", "refine"] * 3
    assert [s.round for s in recorder.steps] == [0, 1, 1, 2, 2, 3, 3]
    assert (result.answer, result.stop_reason, result.answers) == ("y3", "max_rounds", ["y0", "y1", "y2", "y3"])


def test_steps_link_feedback_to_its_answer_and_refinement_to_its_feedback():
    recorder = ListRecorder()
    reflect(RunContext(ScriptedBackend(["y0", "f1", "y1", "f2", "y2"]), recorder=recorder), "task", rounds=2)
    assert [s.parent for s in recorder.steps] == [None, 0, 1, 2, 3]
    assert all(s.generation is not None and s.generation.text == s.text for s in recorder.steps)


def test_full_history_refine_prompt_at_round_three_holds_earlier_answers_and_feedback_in_order():
    model = ScriptedBackend(["y0", "f1", "y1", "f2", "y2", "f3", "y3"])
    reflect(model, "task", rounds=3, history="full")
    third_refine = user_text(model.prompts[6])
    positions = [third_refine.index(x) for x in ("y0", "f1", "y1", "f2", "y2", "f3")]
    assert positions == sorted(positions)


def test_last_history_refine_prompt_sees_only_the_current_answer_and_feedback():
    model = ScriptedBackend(["y0", "f1", "y1", "f2", "y2"])
    reflect(model, "task", rounds=2, history="last")
    second_refine = user_text(model.prompts[4])
    assert "y1" in second_refine and "f2" in second_refine
    assert "y0" not in second_refine and "f1" not in second_refine


def test_the_feedback_prompt_shows_the_task_the_current_answer_and_the_stop_marker():
    model = ScriptedBackend(["y0", "f1", "y1", "DONE"])
    reflect(model, "Write a poem", rounds=3, templates={"stop_marker": "DONE"})
    feedback_prompt = user_text(model.prompts[3])
    assert "Write a poem" in feedback_prompt and "y1" in feedback_prompt and "DONE" in feedback_prompt


@pytest.mark.parametrize("feedback, stops", [("STOP", True), ("Good. STOP.", True), ("stop here", False),
                                             ("STOPPING now", False)])
def test_the_stop_marker_matches_as_a_whole_case_sensitive_word(feedback, stops):
    result = reflect(ScriptedBackend(["y0", feedback, "y1"]), "t", rounds=1)
    assert (result.stop_reason == "feedback_stop") is stops


def test_an_empty_stop_marker_switches_feedback_stop_off():
    result = reflect(ScriptedBackend(["y0", "STOP", "y1"]), "t", rounds=1,
                     templates={"stop_marker": "", "feedback": "Critique {draft}"})
    assert result.stop_reason == "max_rounds"


def test_a_verifier_that_accepts_the_draft_stops_before_any_feedback():
    model = ScriptedBackend(["42"])
    recorder = ListRecorder()
    result = reflect(RunContext(model, recorder=recorder), "t", stop_fn=lambda a: a == "42")
    assert (result.stop_reason, len(model.prompts)) == ("verifier", 1)
    assert [(s.name, s.value, s.target_step) for s in recorder.scores] == [("verifier", 1.0, 0)]


def test_a_verifier_is_checked_after_each_refinement():
    model = ScriptedBackend(["41", "wrong", "42"])
    result = reflect(model, "t", rounds=3, stop_fn=lambda a: a == "42")
    assert (result.answer, result.stop_reason, result.rounds) == ("42", "verifier", 1)


def test_a_score_function_stops_at_the_threshold_and_keeps_scores_per_answer():
    model = ScriptedBackend(["a", "f", "aaa", "f", "aaaaa"])
    result = reflect(model, "t", rounds=2, stop_fn=lambda a: float(len(a)), score_threshold=3)
    assert (result.stop_reason, result.scores, result.best_answer) == ("score_threshold", [1.0, 3.0], "aaa")


def test_scores_without_a_threshold_never_stop_but_pick_the_best_answer():
    model = ScriptedBackend(["aaa", "f", "a"])
    result = reflect(model, "t", rounds=1, stop_fn=lambda a: float(len(a)))
    assert (result.stop_reason, result.answer, result.best_answer) == ("max_rounds", "a", "aaa")


def test_a_stop_fn_returning_neither_bool_nor_number_is_an_option_error():
    with pytest.raises(OptionError, match="must return a bool .* or a number .*, got 'yes'"):
        reflect(ScriptedBackend(["a"]), "t", stop_fn=lambda a: "yes")


@pytest.mark.parametrize("tone, phrase", [("encouraging", "warm and encouraging"), ("strict", "strict and demanding"),
                                          ("Talk like a pirate.", "Talk like a pirate.")])
def test_a_tone_is_written_into_the_feedback_prompt(tone, phrase):
    model = ScriptedBackend(["y0", "f", "y1"])
    recorder = ListRecorder()
    reflect(RunContext(model, recorder=recorder), "t", rounds=1, tone=tone)
    assert phrase in user_text(model.prompts[1])
    assert phrase in recorder.steps[1].attributes["tone"]


def test_a_list_of_tones_is_cycled_round_by_round():
    model = ScriptedBackend(["y0", "f1", "y1", "f2", "y2", "f3", "y3"])
    reflect(model, "t", rounds=3, tone=["strict", "encouraging"])
    feedback_prompts = [user_text(model.prompts[i]) for i in (1, 3, 5)]
    assert ["strict" in p for p in feedback_prompts] == [True, False, True]
    assert "encouraging" in feedback_prompts[1]


def test_an_unknown_single_word_tone_lists_the_known_ones():
    with pytest.raises(OptionError, match=r"unknown tone 'grumpy'; use one of \['curious', 'encouraging'"):
        reflect(ScriptedBackend(["x"]), "t", tone="grumpy")


@pytest.mark.parametrize("kwargs, message", [
    ({"rounds": 0}, r"`rounds` must be a positive integer, got 0"),
    ({"rounds": -2}, r"got -2"),
    ({"history": "some"}, r"`history` must be one of \['full', 'last'\], got 'some'"),
    ({"score_threshold": 0.5}, r"`score_threshold=0.5` needs a `stop_fn`"),
    ({"templates": {"refine": "Fix {draft} with {feedback}"}}, r"history='full' needs the placeholder \{history\}"),
    ({"templates": {"refine": "Fix it using {feedback}"}}, r"template 'refine' for reflect must contain the placeholder \{draft\}"),
    ({"templates": {"draft": "Do {taks}"}}, r"template 'draft' for reflect must contain the placeholder \{task\}"),
    ({"templates": {"draft": "Do {task} as {style}"}}, r"template 'draft' for reflect uses \{style\}"),
    ({"templates": {"draft": "Do {task} in {json"}}, r"template 'draft' is not a valid template"),
    ({"templates": {"drafts": "{task}"}}, r"unknown template 'drafts' for reflect"),
    ({"tone": "strict", "templates": {"feedback": "Judge {draft}"}}, r"needs the placeholder \{tone\}"),
])
def test_bad_options_raise_before_any_generation(kwargs, message):
    model = ScriptedBackend([])
    with pytest.raises(OptionError, match=message):
        reflect(model, "t", **kwargs)
    assert model.calls == []


def test_doubled_braces_in_a_template_are_literal():
    model = ScriptedBackend(["y0"])
    reflect(model, "t", rounds=1, stop_fn=lambda a: True, templates={"draft": 'Reply as {{"answer": ...}}: {task}'})
    assert user_text(model.prompts[0]) == 'Reply as {"answer": ...}: t'


def test_a_system_template_adds_a_system_message_to_every_call():
    model = ScriptedBackend(["y0", "STOP"])
    reflect(model, "t", templates={"system": "You are a poet."})
    assert all(p[0].role == "system" and p[0].content == "You are a poet." for p in model.prompts)


def test_params_reach_the_backend_and_the_result():
    model = ScriptedBackend(["one two three", "STOP"])
    result = reflect(RunContext(model, params=GenerationParams(max_new_tokens=2)), "t")
    assert result.answers == ["one two"] and result.params["max_new_tokens"] == 2
    assert result.steps[0].generation.finish_reason == "length"


def test_a_model_that_is_not_a_backend_is_refused_with_how_to_get_one():
    message = r"the model must be a Backend \(e.g. reflectnb.load_model\('smollm2-135m'\)\), got str"
    with pytest.raises(OptionError, match=message):
        reflect("smollm2-135m", "t")


def test_a_stop_request_ends_the_loop_at_the_next_token_and_keeps_what_was_made():
    ctx = RunContext(ScriptedBackend(["y0", "good enough", "y1", "STOP"]), recorder=ListRecorder())
    ctx.on_token = lambda event: ctx.stop.request() if event.text == " enough" else None
    with pytest.raises(KeyboardInterrupt) as info:
        reflect(ctx, "t", rounds=3)
    assert info.value.partial.stop_reason == "interrupted" and info.value.partial.answers == ["y0"]
    assert [s.kind for s in ctx.recorder.steps] == ["draft"] and len(ctx.recorder.tokens) == 3


def test_tokens_stream_live_to_on_token_and_the_recorder():
    seen, recorder = [], ListRecorder()
    reflect(RunContext(ScriptedBackend(["a b", "STOP"]), on_token=seen.append, recorder=recorder), "t")
    assert [e.text for e in seen] == ["a", " b", "STOP"] and len(recorder.tokens) == 3


def test_the_diff_between_drafts_is_structured_and_escaped_in_html():
    result = reflect(ScriptedBackend(["the <b>cat</b> sat", "f", "the <b>dog</b> sat"]), "t", rounds=1)
    ops = [(d.op, d.a, d.b) for d in result.diff()]
    assert ("replace", " <b>cat</b>", " <b>dog</b>") in ops
    assert "<del> &lt;b&gt;cat&lt;/b&gt;</del><ins> &lt;b&gt;dog&lt;/b&gt;</ins>" in result.diff_html(1)
    with pytest.raises(OptionError, match=r"no refinement 2 to diff: this run has answers 0..1"):
        result.diff(2)
