"""What all loops share: interruption, result objects and their display, templates, layering."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reflectnb.backends.base import GenerationInterrupted
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.strategies import RunContext, critique, debate_du, debate_mad, reflect
from reflectnb.strategies.results import DF_COLUMNS
from reflectnb.strategies.templates import TemplateSpec, placeholders, resolve_templates
from reflectnb.trace import ListRecorder

EVIL = "<script>alert('x')</script> & <b>bold</b>"
NO = '{"Whether there is a preference": "No", "debate_answer": ""}'


# -- interruption ------------------------------------------------------------------------------------------------


def test_reflect_interrupted_mid_loop_keeps_earlier_steps_and_the_partial_one():
    model = ScriptedBackend(["y0", "f1", "y1", ScriptedBackend.interrupt("half of f2")])
    recorder = ListRecorder()
    with pytest.raises(KeyboardInterrupt) as info:
        reflect(RunContext(model, recorder=recorder), "t", rounds=3)
    assert [s.kind for s in recorder.steps] == ["draft", "feedback", "refine", "feedback"]
    assert recorder.steps[-1].attributes == {"interrupted": True} and recorder.steps[-1].text == "half of f2"
    partial = info.value.partial
    assert (partial.stop_reason, partial.answer, partial.steps) == ("interrupted", "y1", recorder.steps)


def test_an_interrupt_with_nothing_generated_records_no_empty_step():
    recorder = ListRecorder()
    with pytest.raises(KeyboardInterrupt) as info:
        reflect(RunContext(ScriptedBackend(["y0", KeyboardInterrupt()]), recorder=recorder), "t")
    assert isinstance(info.value, GenerationInterrupted)
    assert [s.kind for s in recorder.steps] == ["draft"] and info.value.partial.interrupted


def test_the_partial_result_replaces_the_backends_generations_under_the_one_name_partial():
    with pytest.raises(GenerationInterrupted) as info:
        reflect(ScriptedBackend(["y0", ScriptedBackend.interrupt("half")]), "t")
    assert info.value.partial.answers == ["y0"] and not hasattr(info.value, "partial_result")


def test_an_interrupted_traced_generate_carries_its_partial_generations_with_the_run_id(trace_file):
    import reflectnb

    with pytest.raises(GenerationInterrupted) as info:
        reflectnb.generate(["a", "b"], model=ScriptedBackend(["done", ScriptedBackend.interrupt("half")]))
    run_ids = {g.run_id for g in info.value.partial}
    assert [g.text for g in info.value.partial] == ["done", "half"] and len(run_ids) == 1 and None not in run_ids


def test_settings_a_backend_cannot_honour_are_refused_by_its_generate_before_any_reply_or_step():
    from reflectnb.backends.base import GenerationParams
    from reflectnb.errors import CapabilityError

    backend, recorder = ScriptedBackend(["y0"]), ListRecorder()
    params = GenerationParams(logits_processors=(object(),))
    with pytest.raises(CapabilityError, match="the 'scripted' backend cannot apply logits processors"):
        reflect(RunContext(backend, params=params, recorder=recorder), "t")
    assert backend.calls == [] and recorder.steps == []


def test_a_plain_keyboard_interrupt_from_a_callback_still_carries_the_partial_result():
    def verifier(answer):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        reflect(ScriptedBackend(["y0"]), "t", stop_fn=verifier)
    assert info.value.partial.answers == ["y0"]


def test_critique_interrupted_during_the_critic_keeps_the_answer():
    recorder = ListRecorder()
    with pytest.raises(KeyboardInterrupt):
        critique(RunContext(ScriptedBackend(["a0", ScriptedBackend.interrupt("Step 1: corr")]), recorder=recorder), "Q")
    assert [(s.kind, s.attributes.get("interrupted")) for s in recorder.steps] == [("answer", None),
                                                                                   ("critique", True)]


def test_mad_interrupted_in_round_two_keeps_round_one():
    model = ScriptedBackend({"moderator": [NO], "": ["a1", "n1", KeyboardInterrupt()]})
    recorder = ListRecorder()
    with pytest.raises(KeyboardInterrupt) as info:
        debate_mad(RunContext(model, recorder=recorder), "t")
    assert [s.agent for s in recorder.steps] == ["affirmative", "negative", "moderator"]
    assert info.value.partial.rounds == 2


def test_du_interrupted_inside_a_batch_records_the_rows_already_produced():
    model = ScriptedBackend(["A0", "B0", "A1", ScriptedBackend.interrupt("B1 so far")])
    recorder = ListRecorder()
    with pytest.raises(KeyboardInterrupt) as info:
        debate_du(RunContext(model, recorder=recorder), "Q", n_agents=2, rounds=2)
    assert [(s.text, s.attributes.get("interrupted")) for s in recorder.steps] == [
        ("A0", None), ("B0", None), ("A1", True), ("B1 so far", True)]
    assert info.value.partial.stop_reason == "interrupted"


# -- result objects ----------------------------------------------------------------------------------------------


@pytest.fixture()
def evil_result():
    return reflect(ScriptedBackend([EVIL, "feedback " + EVIL, EVIL + " v2"]), EVIL, rounds=1)


def test_to_df_has_one_row_per_step_with_tokens_and_seconds(evil_result):
    df = evil_result.to_df()
    assert list(df.columns) == DF_COLUMNS and len(df) == 3
    assert df["kind"].tolist() == ["draft", "feedback", "refine"] and df["parent"].tolist()[1:] == [0, 1]
    assert df["tokens"].tolist() == [3, 4, 4] and (df["seconds"] >= 0).all()
    assert evil_result.tokens == 11


def test_html_escapes_every_piece_of_model_text(evil_result):
    page = evil_result._repr_html_()
    assert "<script>" not in page and "<b>bold" not in page
    assert page.count("&lt;script&gt;") >= 3


def test_plain_text_shows_answer_stop_reason_and_steps(evil_result):
    text = str(evil_result)
    assert "stop reason: max_rounds" in text and "[2] round 1 refine" in text

    class Printer:
        def __init__(self):
            self.out = ""

        def text(self, s):
            self.out += s
    p = Printer()
    evil_result._repr_pretty_(p, False)
    assert p.out == text


def test_to_dict_is_json_serialisable_and_run_id_is_shown_once_set(evil_result):
    evil_result.run_id = "run-7"
    json.dumps(evil_result.to_dict())
    assert "run-7" in str(evil_result) and "run-7" in evil_result._repr_html_()


def test_debate_results_show_votes_and_agents():
    result = debate_du(ScriptedBackend(["The answer is 5", "The answer is 7", "The answer is 5"]), "Q",
                       n_agents=3, rounds=1)
    assert "votes: '5': 2, '7': 1" in str(result)
    assert result.transcript()[0] == (0, "agent 1", "answer", "The answer is 5")


def test_step_prompts_are_snapshots_not_the_growing_chat_memory():
    result = debate_mad(ScriptedBackend({"moderator": [NO, NO], "judge": ["c", "{}"], "": ["a1", "n1", "a2", "n2"]}),
                        "t", max_rounds=2)
    first_affirmative = result.steps[0].generation.prompt
    assert [m.role for m in first_affirmative] == ["system", "user"]


# -- templates ---------------------------------------------------------------------------------------------------


def test_placeholders_ignore_doubled_braces_and_attribute_access():
    assert placeholders("t", "{a} {{b}} {c.d} {e[0]}") == {"a", "c", "e"}


def test_an_empty_placeholder_is_refused_with_a_hint():
    with pytest.raises(OptionError, match=r"template 'x' has an empty placeholder \{\}"):
        placeholders("x", "value: {}")


def test_a_non_string_template_is_refused():
    specs = {"draft": TemplateSpec("{task}", required=("task",))}
    with pytest.raises(OptionError, match="template 'draft' for demo must be a str, got int"):
        resolve_templates("demo", specs, {"draft": 3})


def test_settings_pass_through_next_to_checked_templates():
    specs = {"draft": TemplateSpec("{task}", required=("task",))}
    got = resolve_templates("demo", specs, {"marker": "DONE"}, {"marker": "STOP"})
    assert got == {"marker": "DONE", "draft": "{task}"}


# -- layering ----------------------------------------------------------------------------------------------------


def test_strategies_import_neither_torch_nor_the_store():
    code = ("import sys, reflectnb.strategies, reflectnb.backends.scripted; "
            "print([m for m in ('torch', 'transformers', 'duckdb', 'reflectnb.store', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
