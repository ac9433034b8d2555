"""Let a widget's stop button reach a cell that is still running.

While a cell runs, the kernel's main thread does not read messages from the
front-end, so a click would wait until the loop ends. Two ways around it:

* **Kernel subshells** (ipykernel >= 7): the widget's comm is routed to a
  subshell — a second shell thread the kernel runs alongside the main one — so
  the stop message is handled at once while the cell keeps running. The
  handler only sets a :class:`threading.Event`; the loop checks it between tokens.
* **Polling** (ipykernel 6): between tokens, process pending front-end
  messages with ``jupyter-ui-poll`` (``kernel.do_one_iteration()`` while holding
  back execute requests, which are replayed after the cell). ipykernel 7 has no
  ``do_one_iteration`` (jupyter-ui-poll 1.1 then silently does nothing), so
  polling is only chosen on kernels that have it.

Outside a kernel (a terminal, plain Python) both are off and only Ctrl-C stops.
``REFLECTNB_STOP_MODE`` (``auto`` | ``subshell`` | ``poll`` | ``off``) overrides
the choice. Neither path ever raises into the generation loop; a failure disables it.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Any

from reflectnb.widgets.throttle import Throttle

_SUBSHELL: dict[int, str] = {}  # one stop subshell per kernel (keyed by id(kernel))


def _kernel() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def _stop_subshell(kernel: Any) -> str | None:
    """Create (once) and return a subshell id for stop messages, or None if unsupported."""
    if id(kernel) in _SUBSHELL:
        return _SUBSHELL[id(kernel)]
    thread = getattr(kernel, "shell_channel_thread", None)
    if not getattr(kernel, "_supports_kernel_subshells", False) or thread is None:
        return None
    done: concurrent.futures.Future[str] = concurrent.futures.Future()

    def create() -> None:
        try:
            done.set_result(thread.manager._create_subshell())
        except Exception as exc:  # pragma: no cover - depends on the kernel version
            done.set_exception(exc)

    thread.io_loop.add_callback(create)
    _SUBSHELL[id(kernel)] = done.result(timeout=5)
    return _SUBSHELL[id(kernel)]


class StopListener:
    """Watches for a stop request on ``comm`` while a cell runs.

    ``requested`` is set by the message handler (on the subshell thread, or during
    :meth:`poll`); :meth:`poll` is cheap and safe to call after every token.
    """

    def __init__(self, comm: Any = None, interval: float = 0.2):
        self.requested = threading.Event()
        self.interval = interval
        self.mode = "off"
        self._context: Any = None
        self._poll: Any = None
        self._due = Throttle(interval)  # the first poll runs at once, whatever the clock reads
        kernel = _kernel()
        if kernel is not None:
            self.mode = self._route(kernel, comm)

    def _route(self, kernel: Any, comm: Any) -> str:
        wanted = os.environ.get("REFLECTNB_STOP_MODE", "auto").strip().lower()
        can_poll = hasattr(kernel, "do_one_iteration")
        if wanted == "off" or (wanted == "poll" and can_poll):
            return wanted
        # ipykernel >= 7.4 asks a comm which subshell its incoming messages go to (the
        # shell channel thread calls ``comm._reply_subshell_for``); older 7.x cannot route.
        routable = callable(getattr(type(comm), "_reply_subshell_for", None))
        try:
            subshell = _stop_subshell(kernel) if routable and wanted != "poll" else None
        except Exception:
            subshell = None
        if subshell is None:
            return "poll" if can_poll else "off"
        comm._reply_subshell_for = lambda data, default: subshell
        return "subshell"

    def poll(self) -> None:
        """In polling mode, process pending front-end messages (at most every ``interval`` s)."""
        if self.mode != "poll" or not self._due.ready():
            return
        try:
            if self._poll is None:
                from jupyter_ui_poll import ui_events

                self._context = ui_events()
                self._poll = self._context.__enter__()
            self._poll(10)
        except Exception:  # never break a generation because polling failed
            self.mode = "off"

    def close(self) -> None:
        """Stop polling (held-back execute requests are replayed when the cell ends)."""
        if self._context is not None:
            try:
                self._context.__exit__(None, None, None)
            except Exception:
                pass
        self._context = self._poll = None
