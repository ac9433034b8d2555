"""LiveView: a run (reflect, critique, debate, tree, generate) shown as it happens.

The widget is a :class:`~reflectnb.trace.Recorder`, so the API fans a loop's
reports out to it and to the trace store at once. It holds only display state:
finished steps (with a word diff against the previous answer for refinements,
and step verdicts for critiques), the text of generations still streaming, the
status and the outcome. Streamed tokens are synced at most every ``throttle``
seconds, so the view never slows generation.

The stop button sends ``{"type": "stop"}``. The message reaches the kernel while
the cell still runs (through a kernel subshell, or by polling; see
:class:`~reflectnb.widgets.stop.StopListener`, exposed as ``stop_listener``). The run's
:class:`~reflectnb.strategies.context.RunContext` watches it: after the next token its
stop signal raises ``KeyboardInterrupt`` — the same path as the kernel's interrupt,
so the run is saved as interrupted and the kernel stays usable. The view itself,
a recorder, never raises.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import anywidget
import traitlets

from reflectnb.errors import OptionError
from reflectnb.strategies.diff import diff_ops
from reflectnb.trace import Node, Score, Step, TokenEvent
from reflectnb.widgets.bundle import bundle
from reflectnb.widgets.html import render_steps_html
from reflectnb.widgets.stop import StopListener
from reflectnb.widgets.throttle import Throttle

_REVISIONS = {"refine", "revise"}
_ANSWERS = {"draft", "answer", "refine", "revise"}
KINDS = ("reflect", "critique", "debate", "tree", "generate")


def step_state(step: Step, previous_answer: str | None) -> dict[str, Any]:
    """The JSON state the front-end draws for one step."""
    gen = step.generation
    state = {"kind": step.kind, "text": step.text, "round": step.round, "agent": step.agent,
             "role": step.role, "parent": step.parent, "attributes": _plain(step.attributes),
             "tokens": len(gen.tokens) if gen else 0, "seconds": round(gen.seconds, 3) if gen else 0.0}
    if step.kind in _REVISIONS and previous_answer is not None:
        state["diff"] = [part for op in diff_ops(previous_answer, step.text) for part in _ops(op)]
    if "verdicts" in step.attributes:
        state["verdicts"] = [{"index": v.get("index"), "text": v.get("step_text", ""), "correct": v.get("correct")}
                             for v in step.attributes["verdicts"]]
        state["first_wrong_step"] = step.attributes.get("first_wrong_step")
    return state


def _ops(op) -> list[dict[str, str]]:
    """One difflib operation as the front-end's ``{op, text}`` parts (a replace is delete + insert)."""
    parts = []
    if op.op in ("delete", "replace"):
        parts.append({"op": "delete", "text": op.a})
    if op.op in ("insert", "replace"):
        parts.append({"op": "insert", "text": op.b})
    return parts or [{"op": "equal", "text": op.a}]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


class LiveView(anywidget.AnyWidget):
    """Live view of a run; also a Recorder.

    Parameters
    ----------
    kind : str
        ``reflect`` | ``critique`` | ``debate`` | ``tree`` | ``generate`` (picks the layout).
    title : str, optional
    throttle : float
        Minimum seconds between syncs of streamed text.

    Examples
    --------
    >>> view = LiveView(kind="reflect")                               # doctest: +SKIP
    >>> reflectnb.reflect("Write a haiku", live=view)                  # doctest: +SKIP
    """

    _esm = bundle("live")
    kind = traitlets.Unicode("generate").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    steps = traitlets.List().tag(sync=True)
    streaming = traitlets.Dict().tag(sync=True)
    status = traitlets.Unicode("running").tag(sync=True)
    stop_reason = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    final_answer = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    stop_requested = traitlets.Bool(False).tag(sync=True)

    def __init__(self, kind: str = "generate", title: str | None = None, throttle: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, **kwargs: Any):
        if kind not in KINDS:
            raise OptionError(f"`kind` must be one of {', '.join(KINDS)}; got {kind!r}")
        self._throttle = Throttle(throttle, clock)
        super().__init__(kind=kind, title=title or kind, **kwargs)
        self.throttle = throttle
        self._text: dict[int, str] = {}
        self._labels: dict[int, str] = {}
        self._last_answer: str | None = None
        self._listener = StopListener(self.comm)
        self.on_msg(self._on_front_end_message)

    stop_message = "stopped from the live view"

    @property
    def stop_listener(self) -> StopListener:
        """Where the stop button's click lands; the run context watches it between tokens."""
        return self._listener

    @property
    def stop_mode(self) -> str:
        """How a stop click reaches a running cell: ``subshell``, ``poll`` or ``off``."""
        return self._listener.mode

    def _on_front_end_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # May run on a kernel subshell thread: only set the event; the loop's thread syncs state.
        if isinstance(content, dict) and content.get("type") == "stop":
            self._listener.requested.set()

    # -- Recorder -------------------------------------------------------------------
    def on_token(self, event: TokenEvent) -> None:
        previous = "" if event.position == 0 else self._text.get(event.row, "")
        self._text[event.row] = previous + event.text
        if self._throttle.ready():
            self.streaming = {str(r): {"label": self._labels.get(r, f"row {r}"), "text": t}
                              for r, t in self._text.items()}

    def on_turn(self, turn: Any) -> None:
        """Which agent or role each batch row belongs to (called before a batch starts)."""
        agents = list(getattr(turn, "agents", None) or [])
        kind = getattr(turn, "kind", "")
        self._labels = {i: f"{kind} · {a}" if a else kind for i, a in enumerate(agents or [None])}
        self._text = {}

    def on_step(self, step: Step) -> int:
        self.steps = [*self.steps, step_state(step, self._last_answer)]
        if step.kind in _ANSWERS and step.agent in (None, "actor"):
            self._last_answer = step.text
        self._text, self.streaming = {}, {}
        return len(self.steps) - 1

    def on_node(self, node: Node) -> None:
        pass  # trees get their own view; the live view shows the tokens streaming meanwhile

    def on_score(self, score: Score) -> None:
        pass

    def show(self) -> "LiveView":
        """Display the view and keep its display handle, so :meth:`finish` can refresh the
        static fallback (what nbconvert, GitHub and terminals show) with the whole run."""
        from IPython.display import display

        self._handle = display(self, display_id=True)
        return self

    def finish(self, status: str, stop_reason: str | None = None, final_answer: str | None = None) -> None:
        """Mark the run finished (``completed`` | ``interrupted`` | ``failed``)."""
        self._listener.close()
        self.stop_requested = self._listener.requested.is_set()
        self._text, self.streaming = {}, {}
        self.status = status
        if stop_reason is not None:
            self.stop_reason = stop_reason
        if final_answer is not None:
            self.final_answer = str(final_answer)
        if getattr(self, "_handle", None) is not None:
            self._handle.update(self)

    # -- display --------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle_ = super()._repr_mimebundle_(**kwargs)
        data = bundle_[0] if isinstance(bundle_, tuple) else bundle_
        data["text/html"] = render_steps_html(self.steps, self.kind, self.status, self.final_answer, self.stop_reason)
        data["text/plain"] = self._plain_text()
        return bundle_

    def _plain_text(self) -> str:
        lines = [f"{self.title} [{self.status}]"]
        lines += [f"  round {s['round']} {s['kind']}{' (' + s['agent'] + ')' if s.get('agent') else ''}: "
                  f"{s['text'][:200]}" for s in self.steps]
        if self.final_answer is not None:
            lines.append(f"  answer: {self.final_answer} (stopped: {self.stop_reason})")
        return "\n".join(lines)
