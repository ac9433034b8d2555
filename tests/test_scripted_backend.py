"""The scripted backend replays its script exactly and records every call."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationInterrupted, GenerationParams
from reflectnb.backends.scripted import ScriptedBackend, from_name, split_tokens
from reflectnb.errors import BackendError, CapabilityError, OptionError
from reflectnb.trace import Message


def test_a_list_script_is_replayed_in_order_across_calls():
    model = ScriptedBackend(["one", "two", "three"])
    assert [g.text for g in model.generate(["a", "b"])] == ["one", "two"]
    assert model.generate_one("c").text == "three"
    assert model.remaining == 0


def test_running_out_of_responses_names_how_many_were_given():
    model = ScriptedBackend(["only"])
    model.generate_one("first")
    with pytest.raises(BackendError, match=r"ran out of responses: 1 were given and prompt #2 .*'second'"):
        model.generate_one("second")


def test_every_call_is_recorded_with_its_prompts_and_params():
    model = ScriptedBackend(["x", "y", "z"])
    params = GenerationParams(max_new_tokens=5)
    model.generate(["p1", "p2"], params)
    model.generate_one([Message("user", "p3")])
    assert [len(c.prompts) for c in model.calls] == [2, 1]
    assert model.calls[0].params is params and model.calls[0] == (["p1", "p2"], params)
    assert model.prompts[2][0].content == "p3"


def test_a_callable_script_sees_the_prompt_text_and_a_running_index():
    seen = []
    model = ScriptedBackend(lambda prompt, i: seen.append((prompt, i)) or f"reply {i}")
    out = model.generate(["a", [Message("system", "sys"), Message("user", "b")]])
    model.generate_one("c")
    assert [g.text for g in out] == ["reply 0", "reply 1"]
    assert seen == [("a", 0), ("sys\n\nb", 1), ("c", 2)]


def test_a_dict_script_matches_the_role_in_the_first_message_before_the_rest():
    model = ScriptedBackend({"moderator": "verdict", "": ["arg 1", "arg 2"]})
    debater = [Message("system", "You are a debater"), Message("user", "the moderator will judge")]
    judge = [Message("system", "You are a moderator"), Message("user", "judge")]
    assert [g.text for g in model.generate([debater, judge, debater])] == ["arg 1", "verdict", "arg 2"]


def test_a_dict_script_without_a_matching_key_lists_its_keys():
    model = ScriptedBackend({"critic": "ok"})
    with pytest.raises(BackendError, match=r"no reply for this prompt .*keys are \['critic'\]"):
        model.generate_one("an actor prompt")


def test_a_dict_key_with_a_list_runs_out_by_key():
    model = ScriptedBackend({"a": ["1"]})
    model.generate_one("a")
    with pytest.raises(BackendError, match="ran out of responses for key 'a': 1 were given"):
        model.generate_one("a")


def test_tokens_are_whitespace_words_that_join_back_to_the_text():
    assert split_tokens("Hello  big\nworld ") == ["Hello", "  big", "\nworld "]
    gen = ScriptedBackend(["Hello  big\nworld"]).generate_one("p")
    assert "".join(t.text for t in gen.tokens) == gen.text
    assert [t.position for t in gen.tokens] == [0, 1, 2] and gen.completion_tokens == 3
    assert all(t.logprob is None for t in gen.tokens)


def test_streaming_interleaves_batch_rows_position_by_position():
    events = []
    ScriptedBackend(["a b c", "x y"]).generate(["p", "q"], on_token=events.append)
    assert [(e.row, e.position, e.text) for e in events] == [
        (0, 0, "a"), (1, 0, "x"), (0, 1, " b"), (1, 1, " y"), (0, 2, " c")]


def test_max_new_tokens_counts_words_and_sets_finish_reason_length():
    gen = ScriptedBackend(["one two three four"]).generate_one("p", GenerationParams(max_new_tokens=2))
    assert (gen.text, gen.finish_reason, gen.completion_tokens) == ("one two", "length", 2)


def test_stop_strings_cut_before_the_first_one():
    params = GenerationParams(stop=("END", "\n\n"))
    gen = ScriptedBackend(["answer 4\n\nmore END"]).generate_one("p", params)
    assert (gen.text, gen.finish_reason) == ("answer 4", "stop")


def test_a_scripted_interrupt_streams_the_partial_text_then_raises_with_partials():
    model = ScriptedBackend(["done", ScriptedBackend.interrupt("half a")])
    events = []
    with pytest.raises(GenerationInterrupted) as info:
        model.generate(["p", "q"], on_token=events.append)
    assert [g.text for g in info.value.partial] == ["done", "half a"]
    assert {g.finish_reason for g in info.value.partial} == {"interrupted"}
    assert [e.text for e in events if e.row == 1] == ["half", " a"]


def test_an_exception_in_the_script_is_raised_when_reached():
    model = ScriptedBackend(["ok", BackendError("server down")])
    model.generate_one("p")
    with pytest.raises(BackendError, match="server down"):
        model.generate_one("q")


def test_logits_processors_are_refused_by_capability():
    params = GenerationParams(logits_processors=(object(),))
    with pytest.raises(CapabilityError, match="cannot apply logits processors"):
        ScriptedBackend(["x"]).generate_one("p", params)


def test_generations_carry_model_name_prompt_and_params():
    gen = ScriptedBackend(["hi"], name="teacher").generate_one("say hi")
    assert (gen.model, gen.prompt, gen.prompt_tokens, gen.params["max_new_tokens"]) == ("teacher", "say hi", 2, 256)


def test_a_script_of_the_wrong_type_is_an_option_error():
    with pytest.raises(OptionError, match="needs a list of replies.*got int"):
        ScriptedBackend(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name, replies", [("scripted:a|b", ["a", "b"]), ('scripted:["x|y", "z"]', ["x|y", "z"])])
def test_registry_names_give_a_list_script(name, replies):
    model = from_name(name)
    assert [model.generate_one("p").text for _ in replies] == replies and model.name == name


def test_an_empty_registry_name_says_how_to_write_one():
    with pytest.raises(OptionError, match="needs at least one reply, e.g. 'scripted:draft"):
        from_name("scripted:")
