"""Widgets: state fed through the Recorder methods, static fallbacks, and the stop button in a real kernel."""

from __future__ import annotations

import queue
import textwrap
import time

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.trace import Generation, Step, TokenEvent
from reflectnb.widgets import LiveView, TokenView, render_steps_html, render_tokens_html

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def test_a_reflect_run_fills_the_live_view_with_steps_a_diff_and_the_outcome():
    import reflectnb

    view = LiveView(kind="reflect")
    reflectnb.reflect("Write a haiku", model="scripted:Draft one|Shorter please|Draft two|STOP",
                      trace=False, live=view)
    assert [s["kind"] for s in view.steps] == ["draft", "feedback", "refine", "feedback"]
    assert view.steps[2]["diff"] == [{"op": "equal", "text": "Draft"}, {"op": "delete", "text": " one"},
                                     {"op": "insert", "text": " two"}]
    assert (view.status, view.final_answer, view.stop_reason) == ("completed", "Draft two", "feedback_stop")


def test_streamed_tokens_are_synced_at_most_once_per_throttle_interval():
    view = LiveView(kind="generate", throttle=3600)
    syncs = []
    view.observe(lambda change: syncs.append(change["new"]), names="streaming")
    for i, word in enumerate(["a", " b", " c"]):
        view.on_token(TokenEvent(row=0, position=i, token_id=i, text=word))
    assert len(syncs) == 1 and syncs[0] == {"0": {"label": "row 0", "text": "a"}}


def test_a_stop_message_makes_the_next_token_raise_keyboard_interrupt():
    view = LiveView(kind="generate")
    view._on_front_end_message(view, {"type": "stop"}, [])
    with pytest.raises(KeyboardInterrupt, match="stopped from the live view"):
        view.on_token(TokenEvent(row=0, position=0, token_id=1, text="x"))


def test_critique_steps_carry_their_verdicts_for_the_view():
    view = LiveView(kind="critique")
    view.on_step(Step(kind="critique", text="...", attributes={
        "verdicts": [{"index": 0, "step_text": "4*3=12", "correct": True}, {"index": 1, "step_text": "20-12=7",
                                                                           "correct": False}],
        "first_wrong_step": 1}))
    state = view.steps[0]
    assert state["verdicts"][1] == {"index": 1, "text": "20-12=7", "correct": False}
    assert state["first_wrong_step"] == 1


def test_the_live_view_has_an_escaped_static_html_and_plain_text_fallback():
    view = LiveView(kind="reflect")
    view.on_step(Step(kind="draft", text=HOSTILE))
    view.finish("completed", "max_rounds", HOSTILE)
    data, _ = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "<script>" not in data["text/html"] and "&lt;script&gt;" in data["text/html"]
    assert "onerror=" not in data["text/html"].replace("onerror=alert", "") or "&lt;img" in data["text/html"]
    assert HOSTILE in data["text/plain"]


def test_static_renderers_never_emit_markup_from_model_text():
    html = render_steps_html([{"kind": "draft", "text": HOSTILE, "agent": HOSTILE, "round": 0}], "reflect",
                             final_answer=HOSTILE)
    tokens = render_tokens_html([{"text": HOSTILE, "entropy": 1.0, "logprob": -1.0}])
    for out in (html, tokens):
        assert "<script" not in out and "<img" not in out


def test_token_view_states_scale_and_color_choice():
    gen = Generation(text="Wait, no", model="m", prompt="p", tokens=[
        TokenEvent(row=0, position=0, token_id=1, text="Wait", logprob=-0.2, entropy=2.0, is_reflection=True,
                   top=[("Wait", -0.2), ("But", -1.9)]),
        TokenEvent(row=0, position=1, token_id=2, text=", no", logprob=-3.0, entropy=0.5)])
    view = TokenView(gen)
    assert view.scale_max == 2.0 and view.tokens[0]["top"] == [["Wait", -0.2], ["But", -1.9]]
    view.color_by = "logprob"
    assert view.scale_max == 3.0
    with pytest.raises(Exception, match="`color_by` must be 'entropy' or 'logprob', got 'x'"):
        TokenView(gen, color_by="x")


def test_a_missing_bundle_names_the_build_command(monkeypatch, tmp_path):
    from reflectnb.widgets import bundle

    monkeypatch.setattr(bundle, "STATIC", tmp_path)
    with pytest.raises(Exception, match="npm --prefix js ci && npm --prefix js run build"):
        bundle.bundle("live")


# -- the stop button in a real kernel -----------------------------------------------------------

KERNEL_CODE = textwrap.dedent("""
    import reflectnb
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.widgets import LiveView
    from IPython.display import display
    slow = ScriptedBackend([" ".join(["word"] * 400)] * 4, token_delay=0.02)
    view = LiveView(kind="reflect")
    display(view)
    try:
        reflectnb.reflect("Write a long essay", model=slow, rounds=1, live=view)
        print("FINISHED")
    except KeyboardInterrupt:
        print("STOPPED", view.status)
""")


def _collect_until_idle(kc, msg_id, on_message, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        on_message(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return
    raise AssertionError("the kernel did not finish the cell in time")


def test_the_stop_button_interrupts_a_running_cell_and_the_kernel_stays_usable(trace_file):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env={**__import__("os").environ})
    try:
        msg_id = kc.execute(KERNEL_CODE)
        out, comm_ids, stopped = [], [], []

        def watch(msg):
            if msg["msg_type"] == "comm_open":
                comm_ids.append(msg["content"]["comm_id"])
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "comm_msg" and comm_ids and not stopped:
                state = msg["content"]["data"].get("state", {})
                if "streaming" in state and state["streaming"]:
                    stopped.append(True)  # tokens are streaming: press stop, as the front-end does
                    kc.session.send(kc.shell_channel.socket, kc.session.msg("comm_msg", {
                        "comm_id": comm_ids[-1], "data": {"method": "custom", "content": {"type": "stop"}}}))

        _collect_until_idle(kc, msg_id, watch)
        assert stopped, "no streamed tokens were seen"
        assert "".join(out).strip() == "STOPPED interrupted"
        reply = kc.execute_interactive(
            "from reflectnb.store import open_store\nprint(open_store().sql('SELECT status FROM runs').status.tolist())",
            timeout=60, output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok"
        assert "['interrupted']" in "".join(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
