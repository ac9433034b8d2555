"""The live view's stop button in a real ipykernel, driven the way a front-end drives it.

A client starts a kernel, runs a slow reflect loop with a displayed ``LiveView`` in it,
waits until streamed tokens reach the widget, then sends the comm message the stop
button sends (``comm_msg`` with ``{"method": "custom", "content": {"type": "stop"}}``)
while the cell is still running. The loop must end with ``KeyboardInterrupt``, the run
must be saved as ``interrupted``, and the kernel must run the next cell.

The stop is pressed on the first streamed-token update, while the first of the run's three
generations is streaming; "stopped at once" means the run ends inside that generation
(one generate call, fewer than ``WORDS`` tokens stored), an order of events rather than
a wall-clock bound. The negative control turns the mechanism off
(``REFLECTNB_STOP_MODE=off``): the same message then waits until the cell has finished
all three generations — which is the problem being solved (its generations are shorter,
``CONTROL_WORDS``, since it waits for all of them).

The jupyter-ui-poll path needs ipykernel 6 (7 has no ``do_one_iteration``), so it runs
in a second Python: ``REFLECTNB_TEST_IPYKERNEL6_PYTHON``, else ``.venv-k6/bin/python``,
which ``bash scripts/dev.sh setup`` (and ``test``) creates.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parents[1]
WORDS = 300
CONTROL_WORDS = 40  # the negative control only needs the later generations to run; shorter ones finish sooner

CELL = textwrap.dedent("""
    import reflectnb
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.widgets import LiveView
    from IPython.display import display
    slow = ScriptedBackend([" ".join(["word"] * WORDS_PER_GENERATION)] * 4, token_delay=0.01)
    view = LiveView(kind="reflect")
    display(view)
    try:
        reflectnb.reflect("Write a long essay", model=slow, rounds=1, live=view)
        print("FINISHED", view.status, view.stop_mode, len(slow.calls))
    except KeyboardInterrupt:
        print("STOPPED", view.status, view.stop_mode, len(slow.calls))
""")


def cell(words: int = WORDS) -> str:
    """The cell: a reflect loop whose three generations each stream ``words`` words, 10 ms apart."""
    return CELL.replace("WORDS_PER_GENERATION", str(words))


def start_kernel(tmp_path: Path, python: str, env: dict[str, str]):
    """A kernel of ``python`` (its kernelspec written under ``tmp_path``) and a ready client."""
    spec_dir = tmp_path / "kernels" / "rnb"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "rnb", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    km = KernelManager(kernel_name="rnb", kernel_spec_manager=KernelSpecManager(
        kernel_dirs=[str(tmp_path / "kernels")]))
    km.start_kernel(env={**os.environ, **env})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def run_and_press_stop(kc, words: int = WORDS) -> tuple[str, float | None, float]:
    """Run the cell (``words`` words per generation); press stop on the first streamed-token update.

    Returns (stdout, when stop was pressed or None, when the kernel went idle), on
    ``time.monotonic()``. The tests assert on events; ``benchmarks/bench_stop.py`` uses the times.
    """
    msg_id = kc.execute(cell(words))
    out, comm_ids, pressed = [], [], None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open":
            comm_ids.append(content["comm_id"])
        elif kind == "stream":
            out.append(content["text"])
        elif kind == "comm_msg" and comm_ids and pressed is None and content["data"].get("state", {}).get("streaming"):
            pressed = time.monotonic()
            kc.session.send(kc.shell_channel.socket, kc.session.msg("comm_msg", {
                "comm_id": comm_ids[-1], "data": {"method": "custom", "content": {"type": "stop"}}}))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out).strip(), pressed, time.monotonic()
    raise AssertionError("the kernel did not finish the cell in time")


def _then(kc, code: str) -> str:
    out: list[str] = []
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", "")))
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out).strip()


@pytest.fixture()
def kernel_env(trace_file):
    return {"REFLECTNB_TRACES": str(trace_file)}


def _assert_stops_cleanly(tmp_path, python, env, mode):
    km, kc = start_kernel(tmp_path, python, env)
    try:
        out, pressed, _ = run_and_press_stop(kc)
        assert pressed is not None, "no streamed tokens reached the widget"
        assert out == f"STOPPED interrupted {mode} 1", out  # still in the first of three generate calls
        assert _then(kc, "from reflectnb.store import open_store\n"
                         "print(open_store().sql('SELECT status FROM runs').status.tolist())") == "['interrupted']"
        stored = int(_then(kc, "print(open_store().sql('SELECT count(*) AS n FROM tokens').n[0])"))
        assert 0 < stored < WORDS, stored  # stopped part-way through the first generation
        assert _then(kc, "print(6 * 7)") == "42"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_the_stop_button_interrupts_a_running_cell_and_the_kernel_stays_usable(tmp_path, kernel_env):
    _assert_stops_cleanly(tmp_path, sys.executable, kernel_env, "subshell")


def test_without_the_stop_listener_the_click_would_wait_for_the_cell_to_end(tmp_path, kernel_env):
    km, kc = start_kernel(tmp_path, sys.executable, {**kernel_env, "REFLECTNB_STOP_MODE": "off"})
    try:
        out, pressed, _ = run_and_press_stop(kc, CONTROL_WORDS)
        assert pressed is not None, "no streamed tokens reached the widget"
        calls = re.fullmatch(r"FINISHED completed off (\d+)", out)
        assert calls and int(calls[1]) > 1, out  # pressed during the first generation, yet the later ones ran
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def ipykernel6_python() -> str:
    """The Python whose kernels run ipykernel 6 (made by scripts/dev.sh); a failure says how to make it."""
    python = os.environ.get("REFLECTNB_TEST_IPYKERNEL6_PYTHON") or str(ROOT / ".venv-k6" / "bin" / "python")
    if not Path(python).is_file():
        pytest.fail(f"no Python with ipykernel 6 at {python}: run `bash scripts/dev.sh setup` (it creates .venv-k6) "
                    "or set REFLECTNB_TEST_IPYKERNEL6_PYTHON", pytrace=False)
    return python


def test_on_ipykernel_6_polling_with_jupyter_ui_poll_stops_the_cell(tmp_path, kernel_env):
    python = ipykernel6_python()
    version = subprocess.run([python, "-c", "import ipykernel; print(ipykernel.version_info[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "6", f"{python} has ipykernel {version}, not 6"
    _assert_stops_cleanly(tmp_path, python, kernel_env, "poll")
