"""Debates with scripted agents: MAD (moderator, adaptive break, judge) and Du et al. (batched rounds, votes)."""

from __future__ import annotations

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies import RunContext, debate_du, debate_mad, majority, parse_verdict
from reflectnb.trace import ListRecorder

YES = '{"Whether there is a preference": "Yes", "Supported Side": "Negative", "Reason": "r", "debate_answer": "4"}'
NO = '{"Whether there is a preference": "No", "Supported Side": "", "Reason": "", "debate_answer": ""}'


def mad_model(moderator, debaters, judge=None):
    script = {"moderator": moderator}
    if judge is not None:
        script["You are a judge"] = judge
    script[""] = debaters
    return ScriptedBackend(script)


# -- MAD --------------------------------------------------------------------------------------------------------


def test_a_moderator_decision_in_round_one_costs_exactly_three_calls():
    model = mad_model([YES], ["aff", "neg"])
    result = debate_mad(model, "2+2?")
    assert (len(model.prompts), result.answer, result.stop_reason, result.rounds) == (3, "4", "moderator_decided", 1)


def test_mad_speaks_affirmative_negative_moderator_each_round_with_linked_steps():
    recorder = ListRecorder()
    model = mad_model([NO, YES], ["a1", "n1", "a2", "n2"])
    debate_mad(RunContext(model, recorder=recorder), "topic")
    assert [(s.agent, s.round, s.parent) for s in recorder.steps] == [
        ("affirmative", 0, None), ("negative", 0, 0), ("moderator", 0, 1),
        ("affirmative", 1, 1), ("negative", 1, 3), ("moderator", 1, 4)]


def test_each_debater_answers_the_opponents_latest_argument_in_its_own_memory():
    model = mad_model([NO, YES], ["a1", "n1", "a2", "n2"])
    debate_mad(model, "topic")
    aff_round2, neg_round2 = model.prompts[3], model.prompts[4]
    assert aff_round2[-1].content.startswith("n1") and neg_round2[-1].content.startswith("a2")
    assert [m.content for m in aff_round2 if m.role == "assistant"] == ["a1"]
    assert [m.content for m in neg_round2 if m.role == "assistant"] == ["n1"]
    assert "n1" not in model.prompts[0][-1].content


def test_the_moderator_keeps_its_memory_and_names_the_round():
    model = mad_model([NO, YES], ["a1", "n1", "a2", "n2"])
    debate_mad(model, "topic")
    second = model.prompts[5]
    assert "second round" in second[-1].content and "a2" in second[-1].content and "n2" in second[-1].content
    assert [m.content for m in second if m.role == "assistant"] == [NO]


def test_no_decision_after_max_rounds_calls_the_judge_twice_and_takes_its_answer():
    judge = ["candidates: 4 or 5", '{"Reason": "sum", "debate_answer": "4"}']
    model = mad_model([NO, NO], ["a1", "n1", "a2", "n2"], judge=judge)
    recorder = ListRecorder()
    result = debate_mad(RunContext(model, recorder=recorder), "topic", max_rounds=2)
    assert (result.answer, result.stop_reason, len(model.prompts)) == ("4", "judge", 8)
    assert [s.attributes.get("turn") for s in recorder.steps[-2:]] == ["candidates", "final"]
    assert "a2" in model.prompts[6][-1].content and result.judge == {"Reason": "sum", "debate_answer": "4"}


def test_judge_sees_first_reproduces_the_repo_quirk():
    judge = ["c", '{"debate_answer": "x"}']
    model = mad_model([NO, NO], ["a1", "n1", "a2", "n2"], judge=judge)
    debate_mad(model, "topic", max_rounds=2, judge_sees="first")
    assert "a1" in model.prompts[6][-1].content and "a2" not in model.prompts[6][-1].content


def test_a_preference_without_an_answer_takes_the_supported_sides_last_argument():
    verdict = '{"Whether there is a preference": "Yes", "Supported Side": "Affirmative", "debate_answer": ""}'
    result = debate_mad(mad_model([verdict], ["aff says 4", "neg says 5"]), "t")
    assert result.answer == "aff says 4"


def test_repaired_moderator_json_is_used_and_flagged_on_the_step():
    recorder = ListRecorder()
    sloppy = "Here you go: {'Whether there is a preference': 'Yes', 'debate_answer': '4',} Thanks!"
    result = debate_mad(RunContext(mad_model([sloppy], ["a", "n"]), recorder=recorder), "t")
    assert result.answer == "4" and recorder.steps[2].attributes["json_repaired"] is True


def test_unreadable_moderator_json_falls_back_to_no_preference_and_records_the_error():
    recorder = ListRecorder()
    model = mad_model(["I prefer the negative side.", YES], ["a1", "n1", "a2", "n2"])
    result = debate_mad(RunContext(model, recorder=recorder), "t")
    assert recorder.steps[2].attributes["json_error"] == "no {...} object in the reply"
    assert result.rounds == 2 and result.verdicts[0]["Whether there is a preference"] == "No"


@pytest.mark.parametrize("text, preference, answer, attrs", [
    (YES, True, "4", {}),
    ("```json\n" + NO + "\n```", False, "", {"json_repaired": True}),
    ('{"whether_there_is_a_preference": "yes", "DEBATE ANSWER": 7}', True, "7", {}),
    ("{“preference”: “No”, “debate_answer”: “”}", False, "", {"json_repaired": True}),
    ('{"preference": "Yes", "debate_answer": "4"', False, "", {"json_error": "the {...} object is not valid JSON"}),
])
def test_moderator_json_is_read_loosely(text, preference, answer, attrs):
    v = parse_verdict(text)
    assert (v.preference, v.answer, v.attributes) == (preference, answer, attrs)


def test_roles_may_use_different_backends():
    debaters, moderator = ScriptedBackend(["a", "n"]), ScriptedBackend([YES])
    debate_mad(moderator, "t", roles={"affirmative": debaters, "negative": debaters, "moderator": moderator})
    assert (len(debaters.prompts), len(moderator.prompts)) == (2, 1)


@pytest.mark.parametrize("arg, kwargs, message", [
    ({"affirmative": None}, {}, r"unknown MAD role|needs a backend"),
    ({"pro": ScriptedBackend([])}, {}, r"unknown MAD role 'pro'; roles are \['affirmative'"),
    ({"affirmative": ScriptedBackend([]), "negative": ScriptedBackend([])}, {}, r"needs a backend for the role 'moderator'"),
    (ScriptedBackend([]), {"max_rounds": 0}, r"`max_rounds` must be a positive integer, got 0"),
    (ScriptedBackend([]), {"judge_sees": "all"}, r"`judge_sees` must be one of \['last', 'first'\], got 'all'"),
    (ScriptedBackend([]), {"templates": {"rebuttal": "Agree?"}}, r"template 'rebuttal' for debate_mad must contain the placeholder \{opponent\}"),
])
def test_bad_mad_options_name_the_value(arg, kwargs, message):
    with pytest.raises(OptionError, match=message):
        debate_mad(ScriptedBackend([]), "t", roles=arg, **kwargs)


# -- Du et al. --------------------------------------------------------------------------------------------------


def test_three_agents_two_rounds_make_six_generations_in_two_batched_calls():
    model = ScriptedBackend([f"The answer is {i}" for i in range(6)])
    debate_du(model, "Q", n_agents=3, rounds=2)
    assert [len(call.prompts) for call in model.calls] == [3, 3]


def test_in_round_one_each_agent_sees_the_others_round_zero_answers_but_not_its_own():
    model = ScriptedBackend(["A0", "B0", "C0", "A1", "B1", "C1", "A2", "B2", "C2"])
    debate_du(model, "Q", n_agents=3, rounds=3)
    first_agent_round1 = model.calls[1].prompts[0][-1].content
    assert "B0" in first_agent_round1 and "C0" in first_agent_round1 and "A0" not in first_agent_round1
    third_agent_round2 = model.calls[2].prompts[2][-1].content
    assert "A1" in third_agent_round2 and "B1" in third_agent_round2 and "A0" not in third_agent_round2


def test_every_agents_history_has_two_messages_per_round():
    model = ScriptedBackend([f"x{i}" for i in range(9)])
    debate_du(model, "Q", n_agents=3, rounds=3)
    assert [len(p) for p in model.calls[2].prompts] == [5, 5, 5]  # + its own answer to come = 6 = 2R


def test_du_steps_link_each_update_to_the_agents_previous_answer_and_list_what_it_saw():
    recorder = ListRecorder()
    debate_du(RunContext(ScriptedBackend([f"x{i}" for i in range(6)]), recorder=recorder), "Q", n_agents=3, rounds=2)
    updates = recorder.steps[3:]
    assert [(s.agent, s.parent, s.attributes["saw"]) for s in updates] == [
        ("agent 1", 0, [1, 2]), ("agent 2", 1, [0, 2]), ("agent 3", 2, [0, 1])]


def test_a_single_agent_gets_the_self_reflection_prompt():
    model = ScriptedBackend(["The answer is 3", "The answer is 4"])
    result = debate_du(model, "Q", n_agents=1, rounds=2)
    assert "double check" in model.prompts[1][-1].content and result.answer == "4"


@pytest.mark.parametrize("answers, winner", [(["5", "5", "7"], "5"), (["5", "7"], "5"), (["7", "5"], "7"),
                                             (["7", "5", "5", "7"], "7"), ([None, "3", None], "3"),
                                             (["5.0", "5", "6"], "5.0"), ([None, None], None)])
def test_majority_vote_ties_go_to_the_first_agents_answer(answers, winner):
    assert majority(answers)[0] == winner


def test_the_result_carries_each_agents_final_answer_and_the_vote_tally():
    model = ScriptedBackend(["a", "b", "c", "The answer is 5", "The answer is 7", "so \\boxed{5}"])
    result = debate_du(model, "Q", n_agents=3, rounds=2)
    assert result.agent_answers == {"agent 1": "5", "agent 2": "7", "agent 3": "5"}
    assert (result.answer, result.votes, result.stop_reason) == ("5", {"5": 2, "7": 1}, "max_rounds")


@pytest.mark.parametrize("text, answer", [("The answer is 7.```", "7"), ("Answer: **Paris**!", "Paris"),
                                          ("so \\boxed{x^2} and then", "x^2"), ("It is 12, or 13", "13"),
                                          ("no digits here\nfinal line", "final line"), ("", None)])
def test_the_default_answer_reader_takes_what_the_agent_commits_to(text, answer):
    model = ScriptedBackend([text])
    assert debate_du(model, "Q", n_agents=1, rounds=1).agent_answers == {"agent 1": answer}


def test_a_custom_answer_fn_decides_what_each_agent_votes_for():
    model = ScriptedBackend(["yes", "no", "YES"])
    result = debate_du(model, "Q", n_agents=3, rounds=1, answer_fn=lambda t: t.lower())
    assert (result.answer, result.votes) == ("yes", {"yes": 2, "no": 1})


def test_the_judge_aggregator_asks_one_more_call_with_every_final_answer():
    model = ScriptedBackend(["The answer is 5", "The answer is 7", "The answer is 7"])
    result = debate_du(model, "Q", n_agents=2, rounds=1, aggregator="judge")
    assert "agent 1: 5" in model.prompts[2][-1].content and "agent 2: 7" in model.prompts[2][-1].content
    assert (result.answer, result.steps[-1].kind) == ("7", "judge")


def test_agents_on_different_backends_are_batched_per_backend():
    big, small = ScriptedBackend(["b1", "b2", "b3", "b4"]), ScriptedBackend(["s1", "s2"])
    result = debate_du(big, "Q", models={"alice": big, "bob": small, "carol": big}, rounds=2)
    assert [len(c.prompts) for c in big.calls] == [2, 2] and [len(c.prompts) for c in small.calls] == [1, 1]
    assert result.agents == ["alice", "bob", "carol"]
    assert [s.agent for s in result.steps[:3]] == ["alice", "carol", "bob"]


def test_a_backend_that_cannot_batch_gets_one_prompt_per_call():
    model = ScriptedBackend([f"x{i}" for i in range(4)])
    model.can_batch = False
    debate_du(model, "Q", n_agents=2, rounds=2)
    assert [len(c.prompts) for c in model.calls] == [1, 1, 1, 1]


def test_without_answer_fn_agents_vote_with_the_contexts_answer_rule():
    model = ScriptedBackend(["Seven", "seven", "Five"])
    result = debate_du(RunContext(model, answer=lambda text: text.lower()), "Q", n_agents=3, rounds=1)
    assert (result.answer, result.votes) == ("seven", {"seven": 2, "five": 1})


def test_on_turn_is_told_which_agents_the_rows_of_each_batch_are():
    turns = []
    ctx = RunContext(ScriptedBackend([f"x{i}" for i in range(4)]), on_turn=turns.append)
    debate_du(ctx, "Q", n_agents=2, rounds=2)
    assert [(t.kind, t.round, t.agents) for t in turns] == [("answer", 0, ("agent 1", "agent 2")),
                                                            ("update", 1, ("agent 1", "agent 2"))]


@pytest.mark.parametrize("backends, kwargs, message", [
    (ScriptedBackend([]), {"n_agents": 0}, r"`n_agents` must be a positive integer, got 0"),
    (ScriptedBackend([]), {"rounds": 0}, r"`rounds` must be a positive integer, got 0"),
    ([ScriptedBackend([]), ScriptedBackend([])], {"n_agents": 3}, r"`n_agents=3` does not match the 2 backends"),
    ([], {}, r"needs at least one backend"),
    (ScriptedBackend([]), {"aggregator": "mean"}, r"`aggregator` must be one of \['majority', 'judge'\], got 'mean'"),
    (["smollm2-135m"], {}, r"backend of 'agent 1'.* must be a Backend"),
    (ScriptedBackend([]), {"templates": {"debate": "Update your answer"}}, r"must contain the placeholder \{others\}"),
])
def test_bad_du_options_name_the_value(backends, kwargs, message):
    with pytest.raises(OptionError, match=message):
        debate_du(ScriptedBackend([]), "Q", models=backends, **kwargs)
