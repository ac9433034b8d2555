"""Speculative Thinking driven by two scripted models: keyword classes, takeover lengths, who wrote what."""

from __future__ import annotations

import types

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext
from reflectnb.strategies.speculative import SETTINGS, classify, speculative_thinking
from reflectnb.trace import ListRecorder

RECAP = SETTINGS["recap_words"]


def words(n: int, lead: str = "") -> str:
    """A reply longer than any limit under test: ``lead`` then n plain words."""
    return lead + " ".join(f"w{i}" for i in range(n))


def limits(backend: ScriptedBackend) -> list[int]:
    return [call.params.max_new_tokens for call in backend.calls]


# -- keyword classes -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, keyword", [
    ("Wait, that is wrong.", "negative", "wait"),
    ("ALTERNATIVELY we could", "negative", "alternatively"),
    ("Hold   on a second", "negative", "hold on"),
    ("Try another way", "negative", "another"),
    ("Let me verify it", "verify", "verify"),
    ("I should think again", "verify", "think again"),
    ("To recap:", "verify", "recap"),
    ("Check the sum", "verify", "check"),
    ("Yeah, so", "positive", "yeah"),
    ("Yes.", "positive", "yes"),
    ("The final answer is 4", "positive", "final answer"),
    ("I am confident", "positive", "confident"),
    ("2 + 2 = 4 so far", None, None),
])
def test_each_reflection_word_falls_in_its_class_in_any_case(text, kind, keyword):
    assert (classify(text).kind, classify(text).keyword) == (kind, keyword)


def test_a_positive_negative_tie_counts_as_negative_and_verify_words_count_on_the_negative_side():
    assert classify("Yes, but wait.").kind == "negative"
    assert classify("Yes, let me check.").kind == "verify"
    assert classify("Yes yes, let me check.").kind == "positive"
    assert classify("Yes yes, wait, check.").counts == {"negative": 1, "verify": 1, "positive": 2}
    assert classify("Yes yes, wait, check.").kind == "negative"  # 2 against 1 + 1 is a tie


def test_words_match_whole_words_only():
    assert classify("awaited checking yesterday anothers holdon").kind is None
    assert classify("(wait)").keyword == "wait"


# -- takeovers -----------------------------------------------------------------------------------------------------

def test_a_draft_with_a_reflection_word_is_replaced_by_the_large_models_20_tokens():
    small = ScriptedBackend(["Two plus two.\n\nmore", words(30, "Wait, "), ""], name="tiny")
    large = ScriptedBackend([words(30, "So it is four. ")], name="big")
    result = speculative_thinking(small, "2 + 2?", large=large, max_tokens=500)
    assert limits(small) == [500, 20, 500 - 3 - 20] and limits(large) == [20]
    assert [s.kind for s in result.steps] == ["reason", "draft", "takeover"]
    takeover = result.steps[2]
    assert takeover.attributes["replaced_draft"] == "Wait, " + words(19)
    assert {k: takeover.attributes[k] for k in ("model", "trigger", "keyword", "kept")} == \
        {"model": "large", "trigger": "negative", "keyword": "wait", "kept": True}
    assert result.steps[1].attributes["kept"] is False and takeover.parent == 1
    assert result.text == "Two plus two.\n\n" + takeover.text and result.takeovers == 1
    assert result.stop_reason == "finished"


def test_a_verify_word_in_the_takeover_lets_the_large_model_go_on_for_125_tokens():
    small = ScriptedBackend(["Step one.\n\nx", words(30, "Wait, "), ""])
    large = ScriptedBackend([words(30, "Let me verify: "), words(200)])
    result = speculative_thinking(small, "q", large=large, max_tokens=1000)
    assert limits(large) == [20, 125]
    verify = result.steps[3]
    assert (verify.kind, verify.attributes["trigger"], verify.attributes["keyword"]) == ("verify", "verify", "verify")
    assert verify.parent == 2 and verify.generation.completion_tokens == 125


def test_the_large_model_continues_from_the_same_text_the_draft_started_from():
    small = ScriptedBackend(["Step one.\n\nx", "Wait, no.", ""])
    large = ScriptedBackend(["Fine."])
    speculative_thinking(small, "q", large=large, segment_tokens=5, takeover_tokens=5)
    assert small.prompts[1] == large.prompts[0] == "q\n\nStep one.\n\n"
    assert small.prompts[0][-1].content == "q"  # the first call is the chat prompt itself


def test_a_draft_without_reflection_words_is_kept_and_the_large_model_is_never_asked():
    small = ScriptedBackend(["Step one.\n\nx", "Two is even.", ""])
    large = ScriptedBackend([])
    result = speculative_thinking(small, "q", large=large, segment_tokens=5)
    assert large.calls == [] and result.takeovers == 0
    assert [(s.kind, s.attributes["model"], s.attributes["kept"]) for s in result.steps] == \
        [("reason", "small", True), ("segment", "small", True)]
    assert result.text == "Step one.\n\nTwo is even." and result.stop_reason == "finished"


def test_a_positive_draft_is_also_taken_over_as_in_the_reference():
    small = ScriptedBackend(["Step one.\n\nx", "Yes, final answer 4.", ""])
    result = speculative_thinking(small, "q", large=ScriptedBackend(["The answer is 4."]), segment_tokens=8)
    assert result.steps[2].attributes["trigger"] == "positive" and result.steps[2].attributes["keyword"] == "yes"


def test_each_token_is_labelled_with_the_model_that_wrote_it():
    small = ScriptedBackend(["Step one.\n\nx", "Wait, no.", "Then done.\n\n", "All good here."], name="tiny")
    large = ScriptedBackend(["It is four. more"], name="big")
    result = speculative_thinking(small, "q", large=large, segment_tokens=5, takeover_tokens=3)
    rows = result.token_rows()
    assert [(r["source"], r["text"]) for r in rows] == [
        ("small", "Step"), ("small", " one."), ("small", "\n\n"), ("large", "It"), ("large", " is"),
        ("large", " four."), ("small", "Then"), ("small", " done."), ("small", "\n\n"), ("small", "All"),
        ("small", " good"), ("small", " here.")]
    assert "".join(r["text"] for r in rows) == result.text == "".join(text for _, text in result.sources())
    assert [r["position"] for r in rows] == list(range(len(rows)))
    assert {s.attributes["model"]: s.generation.model for s in result.steps} == {"small": "tiny", "large": "big"}


# -- recap ---------------------------------------------------------------------------------------------------------

def doubtful_pair(**large_kwargs):
    """A small model that always doubts and a large model that doubts too (every takeover is negative)."""
    small = ScriptedBackend(lambda prompt, i: "Wait, hmm.\n\nnext")
    large = ScriptedBackend(lambda prompt, i: words(80, "Recapped: " if prompt.endswith(RECAP) else "Wait, redo "),
                            **large_kwargs)
    return small, large


def test_after_recap_after_negative_takeovers_the_large_model_recaps_and_the_recap_escalates():
    small, large = doubtful_pair()
    result = speculative_thinking(small, "q", large=large, segment_tokens=2, takeover_tokens=2, recap_after=1,
                                  recap_tokens=10, max_tokens=90)
    recaps = result.steps_of("recap")
    assert [{k: s.attributes[k] for k in ("negatives", "recap_after", "recap_tokens")} for s in recaps] == \
        [{"negatives": 1, "recap_after": 1, "recap_tokens": 10}, {"negatives": 6, "recap_after": 6, "recap_tokens": 35}]
    assert [s.generation.completion_tokens for s in recaps] == [10, 35]
    assert all(s.attributes["inserted"] == RECAP and s.attributes["trigger"] == "recap" for s in recaps)
    assert large.prompts[1].endswith("Wait, hmm.\n\n" + RECAP)
    assert result.recaps == 2 and RECAP + "Recapped:" in result.text


def test_recap_growth_stops_at_its_caps():
    small, large = doubtful_pair()
    result = speculative_thinking(small, "q", large=large, segment_tokens=2, takeover_tokens=2, recap_after=1,
                                  recap_tokens=10, max_tokens=200,
                                  templates={"recap_after_growth": 0, "recap_tokens_max": 30})
    assert [s.attributes["recap_tokens"] for s in result.steps_of("recap")][:4] == [10, 30, 30, 30]


def test_the_run_stops_at_max_tokens_of_kept_text_and_cuts_each_call_to_what_is_left():
    small, large = doubtful_pair()
    result = speculative_thinking(small, "q", large=large, segment_tokens=2, takeover_tokens=2, max_tokens=7)
    assert result.stop_reason == "max_tokens" and result.kept_tokens == 7
    assert limits(small)[-1] == limits(large)[-1] == 1  # 2 + 2 + 2 kept: one token left for a draft and its takeover
    assert result.tokens > result.kept_tokens  # replaced drafts cost tokens too


# -- the trace -----------------------------------------------------------------------------------------------------

def test_every_step_is_reported_and_says_the_tokenizers_are_unknown_for_scripted_models():
    recorder = ListRecorder()
    small = ScriptedBackend(["Step one.\n\nx", "Wait, no.", ""])
    ctx = RunContext(small, recorder=recorder, models={"large": ScriptedBackend(["Fine."])})
    result = speculative_thinking(ctx, "q", segment_tokens=5, takeover_tokens=5)
    assert [s.kind for s in recorder.steps] == ["reason", "draft", "takeover"]
    assert all(s.attributes["tokenizers"] == "unknown" and s.attributes["same_backend"] is False
               for s in recorder.steps)
    assert result.tokenizers == "unknown" and "tokenizers" in dict(result.summary())


def test_tokenizers_are_compared_by_vocabulary():
    small, large = ScriptedBackend(["", ""]), ScriptedBackend([])
    small.tokenizer = types.SimpleNamespace(get_vocab=lambda: {"a": 0, "b": 1})
    large.tokenizer = types.SimpleNamespace(get_vocab=lambda: {"a": 0, "c": 1})
    assert speculative_thinking(small, "q", large=large).tokenizers == "different"
    large.tokenizer = types.SimpleNamespace(get_vocab=lambda: {"a": 0, "b": 1})
    assert speculative_thinking(small, "q", large=large).tokenizers == "same"


def test_one_backend_may_play_both_roles_and_the_trace_says_so():
    model = ScriptedBackend(["Step one.\n\nx", "Wait, no.", "Fine, it is four.", ""])
    result = speculative_thinking(model, "q", large=model, segment_tokens=5, takeover_tokens=2)
    assert result.same_backend and result.tokenizers == "same"
    assert [s.attributes["model"] for s in result.steps] == ["small", "small", "large"]
    assert [s.agent for s in result.steps] == ["small", "small", "large"]
    assert all(s.attributes["same_backend"] for s in result.steps)


def test_ctrl_c_keeps_the_text_so_far_on_the_partial_result():
    small = ScriptedBackend(["Step one.\n\nx", ScriptedBackend.interrupt("Wait")])
    with pytest.raises(KeyboardInterrupt) as info:
        speculative_thinking(small, "q", large=ScriptedBackend([]), segment_tokens=5)
    partial = info.value.partial
    assert partial.stop_reason == "interrupted" and partial.text == "Step one.\n\n"
    assert partial.steps[-1].attributes == {"model": "small", "tokenizers": "unknown", "same_backend": False,
                                            "interrupted": True}
    assert partial.steps[-1].kind == "draft" and partial.steps[-1].text == "Wait"


def test_user_stop_strings_stay_and_the_paragraph_break_is_added_for_the_small_models_reasoning():
    small = ScriptedBackend(["Step one.\n\nx", "Two is even.", ""])
    speculative_thinking(RunContext(small, params=GenerationParams(stop=("END",))), "q",
                         large=ScriptedBackend([]), segment_tokens=5)
    assert [c.params.stop for c in small.calls] == [("END", "\n\n"), ("END",)]


# -- the token view ------------------------------------------------------------------------------------------------

def test_the_token_view_colours_by_source_and_escapes_the_text():
    small = ScriptedBackend(["<b>one</b>\n\nx", "Wait, <script>", ""])
    result = speculative_thinking(small, "q", large=ScriptedBackend(["<img src=x onerror=alert(1)>"]),
                                  segment_tokens=5, takeover_tokens=5)
    from reflectnb.widgets.tokens import TokenView

    view = TokenView(result.token_rows(), color_by="source")
    assert view.color_by == "source" and view.palette == {"small": "#dbeafe", "large": "#fde68a"}
    html = view._repr_mimebundle_()[0]["text/html"]
    assert "<img" not in html and "<b>" not in html and "&lt;img" in html and "onerror=alert(1)&gt;" in html
    assert "background:#dbeafe" in html and "background:#fde68a" in html and "by large" in html


def test_a_palette_value_never_carries_other_css_into_the_static_html():
    from reflectnb.widgets.html import render_tokens_html

    html = render_tokens_html([{"text": "a", "source": "s"}], "source", palette={"s": "red;position:fixed"})
    assert "position" not in html and "background:#f1f5f9" in html


def test_colouring_by_source_needs_tokens_that_carry_one():
    from reflectnb.widgets.tokens import TokenView

    with pytest.raises(OptionError, match=r"color_by='source' needs tokens with a `source` label \(e.g. "
                                          r"SpeculativeResult.token_rows\(\)\); these tokens have none"):
        TokenView([{"text": "a", "position": 0}], color_by="source")


# -- bad input -----------------------------------------------------------------------------------------------------

def test_a_missing_large_model_says_how_to_give_one():
    with pytest.raises(OptionError) as info:
        speculative_thinking(ScriptedBackend([]), "q")
    assert str(info.value) == ("Speculative Thinking needs a large model: pass `large=` (a Backend, e.g. "
                               "reflectnb.load_model('hf:<path>')), models={'large': ...} in the run context, "
                               "or `--large MODEL` to the magic")


def test_a_large_model_that_is_not_a_backend_is_refused():
    with pytest.raises(OptionError, match=r"`large` must be a Backend \(e.g. reflectnb.load_model\('smollm2-135m'\)\), "
                                          r"got str"):
        speculative_thinking(ScriptedBackend([]), "q", large="hf:gpt2")


@pytest.mark.parametrize("name", ["segment_tokens", "takeover_tokens", "verify_tokens", "max_tokens",
                                  "recap_after", "recap_tokens"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_sizes_must_be_positive_integers(name, value):
    with pytest.raises(OptionError, match=f"`{name}` must be a positive integer, got {value!r}"):
        speculative_thinking(ScriptedBackend([]), "q", large=ScriptedBackend([]), **{name: value})


def test_unknown_templates_and_empty_recap_words_are_refused():
    with pytest.raises(OptionError, match="unknown template 'recp_words' for speculative"):
        speculative_thinking(ScriptedBackend([]), "q", large=ScriptedBackend([]), templates={"recp_words": "x"})
    with pytest.raises(OptionError, match="the 'recap_words' setting must be a non-empty str, got ' '"):
        speculative_thinking(ScriptedBackend([]), "q", large=ScriptedBackend([]), templates={"recap_words": " "})


# -- the registered method ----------------------------------------------------------------------------------------

def test_speculative_is_registered_with_the_large_model_as_a_model_option():
    from reflectnb.strategies.spec import get_strategy

    spec = get_strategy("speculative")
    fields = {f.name: f for f in spec.fields}
    assert fields["large"].info.model and fields["large"].flag == "--large"
    assert {n: fields[n].default for n in ("segment_tokens", "takeover_tokens", "verify_tokens", "recap_after",
                                          "recap_tokens")} == {"segment_tokens": 20, "takeover_tokens": 20,
                                                               "verify_tokens": 125, "recap_after": 15,
                                                               "recap_tokens": 125}
    with pytest.raises(OptionError, match="`takeover_tokens` must be a positive integer, got 0"):
        spec.options_from({"takeover_tokens": 0})
    small = ScriptedBackend(["Step one.\n\nx", "Wait, no.", ""])
    result = spec.run(RunContext(small), "q", spec.options_from({"large": ScriptedBackend(["Fine."]),
                                                                 "segment_tokens": 5}))
    assert result.text == "Step one.\n\nFine." and spec.answers_for_eval(result, str) == (["Step one.\n\nFine."], 0)


def test_the_python_function_runs_it_and_names_the_large_option_when_it_is_missing():
    from reflectnb.api import run_strategy

    small = ScriptedBackend(["Step one.\n\nx", "Wait, no.", ""])
    result = run_strategy("speculative", "q", model=small, large=ScriptedBackend(["Fine."]), trace=False,
                          segment_tokens=5, max_tokens=32)
    assert (result.text, result.takeovers, result.params["max_new_tokens"]) == ("Step one.\n\nFine.", 1, 32)
    with pytest.raises(OptionError, match="or `--large MODEL` to the magic"):
        run_strategy("speculative", "q", model=ScriptedBackend([]), trace=False)


def test_the_trace_store_keeps_every_takeover_and_which_model_wrote_each_generation(trace_file):
    import json

    from reflectnb.api import run_strategy
    from reflectnb.store import open_store

    small = ScriptedBackend(["Step one.\n\nx", "Wait, no.", ""], name="tiny")
    result = run_strategy("speculative", "q", model=small, large=ScriptedBackend(["Fine."], name="big"),
                          segment_tokens=5)
    rows = open_store().sql("SELECT s.kind, s.attributes, g.model FROM steps s JOIN generations g "
                            "ON g.run_id = s.run_id AND g.step_index = s.step_index WHERE s.run_id = $r "
                            "ORDER BY s.step_index", {"r": result.run_id})
    assert list(zip(rows["kind"], rows["model"])) == [("reason", "tiny"), ("draft", "tiny"), ("takeover", "big")]
    takeover = json.loads(rows["attributes"][2])
    assert {k: takeover[k] for k in ("model", "trigger", "keyword", "replaced_draft", "tokenizers")} == \
        {"model": "large", "trigger": "negative", "keyword": "wait", "replaced_draft": "Wait, no.",
         "tokenizers": "unknown"}


def test_the_magic_takes_the_large_model_from_a_variable():
    from magic_shell import clean_shell

    with clean_shell() as shell:
        shell.user_ns["tiny"] = ScriptedBackend(["Step one.\n\nx", "Wait, no.", ""])
        shell.user_ns["big"] = ScriptedBackend(["Fine."])
        shell.run_cell_magic("speculative", "-m tiny --large big --segment-tokens 5 --no-stream --no-trace -o out",
                             "q")
        result = shell.user_ns["out"]
    assert (result.text, [s.kind for s in result.steps]) == ("Step one.\n\nFine.", ["reason", "draft", "takeover"])


# -- the embedded model --------------------------------------------------------------------------------------------

@pytest.mark.model
def test_the_embedded_model_takes_over_a_scripted_draft_and_plays_both_roles_from_exact_chat_prompts(smol_backend):
    chat = smol_backend.render([{"role": "user", "content": "What is 2 + 2?"}])
    small = ScriptedBackend(["2 + 2 is 4.\n\nx", "Wait, is that right?", ""], name="tiny")
    mixed = speculative_thinking(small, "What is 2 + 2?", large=smol_backend, takeover_tokens=6, verify_tokens=6)
    takeover = mixed.steps[2]
    assert [s.kind for s in mixed.steps[:3]] == ["reason", "draft", "takeover"] and mixed.tokenizers == "unknown"
    assert takeover.generation.model == "smollm2-135m" and 0 < takeover.generation.completion_tokens <= 6
    assert takeover.generation.prompt == chat + "2 + 2 is 4.\n\n"  # the exact chat prompt plus the text so far
    assert mixed.text.startswith("2 + 2 is 4.\n\n" + takeover.text)
    assert {r["source"] for r in mixed.token_rows()} == {"small", "large"}

    both = speculative_thinking(RunContext(smol_backend, params=GenerationParams(max_new_tokens=12)),
                                "What is 2 + 2?", large=smol_backend, segment_tokens=4, takeover_tokens=4)
    assert both.tokenizers == "same" and both.same_backend and 0 < both.kept_tokens <= 12
    text_so_far = ""
    for step in both.steps:
        text_so_far += step.attributes.get("inserted") or ""  # the recap words come before the recap
        assert step.generation.prompt == chat + text_so_far
        if step.attributes.get("kept"):
            text_so_far += step.generation.text + ("\n\n" if step.attributes.get("break") else "")
    assert text_so_far == both.text == "".join(text for _, text in both.sources())
