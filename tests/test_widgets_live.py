"""LiveView: state fed through the Recorder methods, throttling, stop, finish and fallbacks."""

from __future__ import annotations

import pytest

from reflectnb.errors import OptionError, ReflectnbError
from reflectnb.strategies.engine import Turn
from reflectnb.trace import FanOut, Generation, ListRecorder, Step, TokenEvent
from reflectnb.widgets import LiveView

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tok(text: str, position: int, row: int = 0) -> TokenEvent:
    return TokenEvent(row=row, position=position, token_id=position, text=text)


def test_a_reflect_run_fills_the_live_view_with_steps_a_diff_and_the_outcome():
    import reflectnb

    view = LiveView(kind="reflect")
    reflectnb.reflect("Write a haiku", model="scripted:Draft one|Shorter please|Draft two|STOP",
                      trace=False, live=view)
    assert [s["kind"] for s in view.steps] == ["draft", "feedback", "refine", "feedback"]
    assert view.steps[2]["diff"] == [{"op": "equal", "text": "Draft"}, {"op": "delete", "text": " one"},
                                     {"op": "insert", "text": " two"}]
    assert (view.status, view.final_answer, view.stop_reason) == ("completed", "Draft two", "feedback_stop")
    assert view.streaming == {}


def test_a_step_is_synced_without_its_generation_but_with_token_count_and_seconds():
    view = LiveView(kind="reflect")
    gen = Generation(text="hi", model="m", prompt="p", tokens=[tok("h", 0), tok("i", 1)], seconds=0.12345)
    index = view.on_step(Step(kind="draft", text="hi", generation=gen, attributes={"n": 1, "obj": object}))
    assert index == 0
    assert view.steps[0] == {"kind": "draft", "text": "hi", "round": 0, "agent": None, "role": "assistant",
                             "parent": None, "attributes": {"n": 1, "obj": str(object)}, "tokens": 2,
                             "seconds": 0.123}


@pytest.mark.parametrize("uptime", [0.5, 10_000.0], ids=["booted-half-a-second-ago", "up-for-hours"])
def test_streamed_tokens_are_synced_at_most_once_per_throttle_interval(uptime):
    view = LiveView(kind="generate", throttle=3600, clock=lambda: uptime)  # the monotonic clock starts at boot
    syncs = []
    view.observe(lambda change: syncs.append(change["new"]), names="streaming")
    for i, word in enumerate(["a", " b", " c"]):
        view.on_token(tok(word, i))
    assert syncs == [{"0": {"label": "row 0", "text": "a"}}]


def test_with_no_throttle_every_token_is_synced_and_rows_are_labelled_by_the_turn():
    view = LiveView(kind="debate", throttle=0)
    view.on_turn(Turn(kind="argument", round=0, agents=("agent 1", "agent 2"), model="m"))
    view.on_token(tok("Yes", 0, row=0))
    view.on_token(tok("No", 0, row=1))
    view.on_token(tok(" because", 1, row=1))
    assert view.streaming == {"0": {"label": "argument · agent 1", "text": "Yes"},
                              "1": {"label": "argument · agent 2", "text": "No because"}}


def test_a_finished_step_clears_the_streaming_text():
    view = LiveView(kind="reflect", throttle=0)
    view.on_token(tok("Dra", 0))
    view.on_step(Step(kind="draft", text="Draft"))
    assert view.streaming == {}


def test_critique_steps_carry_their_verdicts_for_the_view():
    view = LiveView(kind="critique")
    view.on_step(Step(kind="critique", text="...", attributes={
        "verdicts": [{"index": 0, "step_text": "4*3=12", "correct": True},
                     {"index": 1, "step_text": "20-12=7", "correct": False}],
        "first_wrong_step": 1}))
    state = view.steps[0]
    assert state["verdicts"] == [{"index": 0, "text": "4*3=12", "correct": True},
                                 {"index": 1, "text": "20-12=7", "correct": False}]
    assert state["first_wrong_step"] == 1


def test_only_the_actors_answers_are_diffed_not_other_agents():
    view = LiveView(kind="debate")
    view.on_step(Step(kind="answer", text="seven", agent="agent 1"))
    view.on_step(Step(kind="revise", text="eight", agent="agent 2"))
    assert "diff" not in view.steps[1]


def test_a_stop_message_makes_the_run_contexts_next_token_raise_keyboard_interrupt():
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.strategies.context import RunContext

    view = LiveView(kind="generate")
    ctx = RunContext(ScriptedBackend(["x"]), recorder=view)
    ctx.stop.watch(view.stop_listener.requested, view.stop_listener.poll, view.stop_message)
    ctx.token(tok("a", 0))  # no stop yet: the token passes
    view._on_front_end_message(view, {"type": "stop"}, [])
    view.on_token(tok("b", 1))  # the view, a recorder, never raises
    with pytest.raises(KeyboardInterrupt, match="stopped from the live view"):
        ctx.token(tok("c", 2))
    view.finish("interrupted")
    assert view.stop_requested is True


def test_other_front_end_messages_do_not_stop_the_run():
    view = LiveView(kind="generate")
    view._on_front_end_message(view, {"type": "hello"}, [])
    view._on_front_end_message(view, "stop", [])
    view.on_token(tok("x", 0))
    assert view.stop_requested is False


def test_outside_a_kernel_the_stop_listener_is_off():
    assert LiveView(kind="generate").stop_mode == "off"


def test_the_live_view_is_a_recorder_that_fans_out_with_others():
    view, rec = LiveView(kind="reflect"), ListRecorder()
    fan = FanOut(rec, view)
    fan.on_token(tok("a", 0))
    fan.on_step(Step(kind="draft", text="a"))
    assert len(rec.steps) == 1 and view.steps[0]["text"] == "a"


def test_finish_records_status_reason_and_answer():
    view = LiveView(kind="reflect", throttle=0)
    view.on_token(tok("a", 0))
    view.finish("interrupted", "keyboard_interrupt", 42)
    assert (view.status, view.stop_reason, view.final_answer, view.streaming) == (
        "interrupted", "keyboard_interrupt", "42", {})


def test_the_mimebundle_has_the_widget_view_an_escaped_html_fallback_and_plain_text():
    view = LiveView(kind="reflect")
    view.on_step(Step(kind="draft", text=HOSTILE))
    view.finish("completed", "max_rounds", HOSTILE)
    data, _ = view._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == view.model_id
    assert "<script" not in data["text/html"] and "<img" not in data["text/html"]
    assert data["text/html"].count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert data["text/plain"].splitlines() == ["reflect [completed]", f"  round 0 draft: {HOSTILE}",
                                               f"  answer: {HOSTILE} (stopped: max_rounds)"]


def test_unknown_kinds_and_negative_throttles_are_refused():
    with pytest.raises(OptionError, match="`kind` must be one of reflect, critique, debate, tree, generate; "
                                          "got 'chat'"):
        LiveView(kind="chat")
    with pytest.raises(OptionError, match="`throttle` must be >= 0 seconds, got -1"):
        LiveView(throttle=-1)


def test_a_missing_bundle_names_the_build_command(monkeypatch, tmp_path):
    from reflectnb.widgets import bundle

    monkeypatch.setattr(bundle, "STATIC", tmp_path)
    with pytest.raises(ReflectnbError, match=r"bundle .*live\.js is missing: build the front-end with "
                                             r"`npm --prefix js ci && npm --prefix js run build`"):
        bundle.bundle("live")


def test_importing_reflectnb_does_not_import_anywidget():
    import subprocess
    import sys

    code = "import sys, reflectnb; print('anywidget' in sys.modules, 'reflectnb.widgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_show_displays_the_view_and_finish_refreshes_the_same_output_with_the_whole_run(monkeypatch):
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell, "display_pub", CapturingDisplayPublisher())
    view = LiveView(kind="reflect").show()
    view.on_step(Step(kind="draft", text="first draft"))
    view.finish("completed", "max_rounds", "first draft")
    shown, updated = shell.display_pub.outputs
    assert shown["transient"]["display_id"] == updated["transient"]["display_id"] and updated["update"]
    assert "first draft" not in shown["data"]["text/html"] and "first draft" in updated["data"]["text/html"]
    assert updated["data"][WIDGET_VIEW]["model_id"] == view.model_id
