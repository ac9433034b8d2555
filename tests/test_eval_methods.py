"""Method specs and what each method produces for one item (scripted models)."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.decoding.parse import parse_schedule
from reflectnb.errors import CapabilityError, OptionError
from reflectnb.evaluate.methods import METHODS, Method, parse_method, parse_methods, run_item, split_top_level
from reflectnb.evaluate.runner import generation_params
from reflectnb.evaluate.tasks import load_tasks
from reflectnb.trace import ListRecorder

TASKS = load_tasks([{"id": "q1", "question": "What is 2+2?", "answer": "4"}])
ITEM = TASKS.items[0]
PARAMS = GenerationParams(max_new_tokens=32, seed=3)


def run(method: str, replies):
    model = ScriptedBackend(replies)
    recorder = ListRecorder()
    outcome = run_item(parse_method(method), model, TASKS, ITEM, PARAMS, recorder)
    return outcome, model, recorder


def test_the_known_methods_are_the_strategies_registered_for_evaluation():
    from reflectnb.strategies.spec import strategies

    assert tuple(METHODS) == tuple(strategies("eval"))
    assert {"baseline", "self_consistency", "reflect", "critique", "debate", "best_of_n"} <= set(METHODS)


def test_a_method_name_that_does_not_exist_lists_the_known_ones():
    with pytest.raises(OptionError, match="unknown method 'reflexion'; known methods: baseline, reflect, critique, "
                                          "debate, self_consistency"):
        parse_methods(["baseline", "reflexion"])


@pytest.mark.parametrize("spec, match", [
    ("reflect(depth=2)", r"method 'reflect\(depth=2\)': no option 'depth'; its options: rounds, history"),
    ("reflect(rounds=0)", "`rounds` must be a positive integer, got 0"),
    ("reflect(2)", r"cannot read method 'reflect\(2\)': options must be given by name"),
    ("reflect(rounds=x)", "`rounds` must be a positive integer, got 'x'"),
    ("reflect(rounds=1+1)", "'1 \\+ 1' is not a literal value"),
    ("reflect(**{'rounds': 1})", "'\\*\\*' is not allowed"),
    ("baseline@wobble(3)", "cannot read schedule 'wobble\\(3\\)'"),
    ("", "non-empty string"),
    ("2 +", "cannot read method"),
])
def test_bad_method_specs_are_refused_before_anything_runs(spec, match):
    with pytest.raises(OptionError, match=match):
        parse_method(spec)


def test_method_specs_with_options_and_schedules():
    methods = parse_methods("baseline, reflect(rounds=1, tone='strict'), baseline@cyclic(amplitude=5, period=60)")
    assert [m.label for m in methods] == ["baseline", "reflect(rounds=1,tone='strict')",
                                         "baseline@cyclic(amplitude=5,period=60)"]
    assert methods[1].options == {"rounds": 1, "tone": "strict"} and methods[1].option("history") == "full"
    assert methods[2].schedule == "cyclic(amplitude=5, period=60)"


def test_methods_and_schedules_share_one_reader_so_bare_words_are_strings_in_both():
    from reflectnb.decoding.parse import read_call

    assert parse_method("reflect(history=last, tone='strict')").options == {"history": "last", "tone": "strict"}
    assert read_call("reflect(history=last)") == ("reflect", [], {"history": "last"})
    assert parse_schedule("tip(alpha=3, beta=600, mode=paper)").mode == "paper"


def test_the_same_method_twice_is_refused():
    with pytest.raises(OptionError, match="name the same method twice"):
        parse_methods(["baseline", Method("baseline")])


def test_commas_inside_brackets_do_not_split_methods():
    assert split_top_level("a, b(x=1, y=[1, 2]), c@d(e=1,f=2)") == ["a", "b(x=1, y=[1, 2])", "c@d(e=1,f=2)"]


def test_baseline_answers_once_with_the_format_instruction():
    outcome, model, recorder = run("baseline", ["2 and 2 make 4. The answer is 4."])
    assert outcome.round_answers == ["4"] and outcome.rounds == 0 and outcome.tokens == 9
    (message,) = model.prompts[0]
    assert message.role == "user" and message.content == "What is 2+2?\n\nEnd with a line 'The answer is ...'."
    assert [s.kind for s in recorder.steps] == ["answer"]


def test_self_consistency_votes_over_samples_at_its_own_temperature():
    outcome, model, recorder = run("self_consistency(samples=3)",
                                   ["The answer is 4", "The answer is 5", "The answer is 4.0"])
    assert outcome.round_answers == ["4"] and outcome.tokens == 12
    assert len(model.calls) == 1 and len(model.calls[0].prompts) == 3
    assert model.calls[0].params.temperature == 0.7 and model.calls[0].params.seed == 3
    samples = {n.node_id: n for n in recorder.nodes if n.node_id > 0}  # the latest report of each node
    assert [samples[i].attributes["extracted_answer"] for i in sorted(samples)] == ["4", "5", "4.0"]
    assert outcome.final_text == "4"


def test_self_consistency_is_the_tree_searchs_self_consistency_on_the_items_prompt(monkeypatch):
    import reflectnb.strategies.tree as tree

    runs = []
    monkeypatch.setattr(tree, "self_consistency", lambda *a, **k: runs.append(k) or tree.oneshot.self_consistency(*a, **k))
    outcome, model, _ = run("self_consistency(samples=2)", ["x = 3/4", "The answer is 3/4. Since"])
    assert outcome.round_answers == ["3/4"] and [r["n"] for r in runs] == [2]
    assert model.prompts[0][0].content == "What is 2+2?\n\nEnd with a line 'The answer is ...'."


def test_self_consistency_at_temperature_zero_is_refused_before_anything_runs():
    with pytest.raises(OptionError, match=r"`sample_temperature` must be a number > 0, got 0"):
        parse_method("self_consistency(sample_temperature=0)")


def test_reflect_keeps_each_rounds_answer_and_an_early_stop_keeps_the_last():
    outcome, _, recorder = run("reflect(rounds=3)", ["The answer is 5", "Recompute 2+2.", "The answer is 4", "STOP"])
    assert outcome.round_answers == ["5", "4", "4"] and outcome.rounds == 2
    assert outcome.stop_reason == "feedback_stop"
    assert [s.kind for s in recorder.steps] == ["draft", "feedback", "refine", "feedback"]


def test_critique_answers_per_round():
    outcome, _, _ = run("critique", ["2+2=5\nThe answer is 5", "Step 1: incorrect - 2+2=4\nFinal answer: incorrect",
                                     "2+2=4\nThe answer is 4"])
    assert outcome.round_answers == ["5", "4"] and outcome.rounds == 1


def test_critique_approval_stops_and_keeps_the_answer():
    outcome, _, _ = run("critique(rounds=2, refine_policy='if_wrong')",
                        ["The answer is 4", "Step 1: correct\nFinal answer: correct"])
    assert outcome.round_answers == ["4", "4"] and outcome.stop_reason == "critic_approved"


def test_debate_answer_per_round_is_the_majority_of_that_round():
    outcome, model, _ = run("debate(agents=3, rounds=2)", ["The answer is 5", "The answer is 4", "The answer is 5",
                                                           "The answer is 4", "The answer is 4", "The answer is 5"])
    assert outcome.round_answers == ["5", "4"] and outcome.rounds == 1
    assert [len(c.prompts) for c in model.calls] == [3, 3]


def test_an_unparsable_reply_gives_no_answer():
    outcome, _, _ = run("baseline", ["I am not sure about this one"])
    assert outcome.round_answers == [None]


def test_a_schedule_needs_a_model_with_a_tokenizer():
    with pytest.raises(CapabilityError, match="needs a local model with a tokenizer; 'scripted' has none"):
        generation_params(ScriptedBackend(["x"]), parse_method("baseline@constant(2)"), temperature=0.0,
                          max_tokens=8, seed=0)
