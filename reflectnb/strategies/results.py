"""The common shape of loop results and how they show themselves.

:class:`LoopResult` holds what every loop produces: the final answer, the stop
reason, the number of rounds run and every :class:`~reflectnb.trace.Step` (each
with its :class:`~reflectnb.trace.Generation`, so tokens and seconds per step).
Strategies subclass it with their own fields (``ReflectResult`` …).

Display: ``to_df()`` (one row per step), ``_repr_html_()`` (every piece of
model text goes through ``html.escape``), ``__str__`` / ``_repr_pretty_``
(plain text), ``to_dict()`` (JSON-friendly). ``run_id`` is filled in by the
caller after tracing.

Non-goals: charts and widgets (they read ``to_df()``).
"""

from __future__ import annotations

import dataclasses
import html
import textwrap
from dataclasses import dataclass, field
from typing import Any

from reflectnb.trace import Step

DF_COLUMNS = ["step", "round", "kind", "agent", "parent", "text", "tokens", "prompt_tokens", "seconds",
              "finish_reason", "model", "interrupted", "attributes"]


@dataclass
class LoopResult:
    """Base result: final answer, stop reason, rounds, steps."""

    strategy: str = ""
    task: str = ""
    answer: str = ""
    stop_reason: str = ""
    rounds: int = 0
    steps: list[Step] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def tokens(self) -> int:
        """Completion tokens over all steps."""
        return sum(s.generation.completion_tokens for s in self.steps if s.generation)

    @property
    def seconds(self) -> float:
        """Generation seconds over all steps (batched rows share their call's time)."""
        return sum(s.generation.seconds for s in self.steps if s.generation)

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    def steps_of(self, kind: str, agent: str | None = None) -> list[Step]:
        """The steps of one kind (and agent), in order."""
        return [s for s in self.steps if s.kind == kind and (agent is None or s.agent == agent)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def step_rows(self) -> list[dict[str, Any]]:
        """One plain dict per step (the rows of :meth:`to_df`)."""
        return [_row(i, s) for i, s in enumerate(self.steps)]

    def to_df(self):
        """A pandas DataFrame, one row per step (columns in ``DF_COLUMNS``)."""
        import pandas as pd

        return pd.DataFrame(self.step_rows(), columns=DF_COLUMNS)

    def summary(self) -> list[tuple[str, str]]:
        """``(label, value)`` lines shown above the steps; subclasses add theirs."""
        return [("answer", self.answer), ("stop reason", self.stop_reason), ("rounds", str(self.rounds)),
                ("tokens", str(self.tokens)), ("seconds", f"{self.seconds:.2f}")]

    def __str__(self) -> str:
        head = f"{type(self).__name__} ({self.strategy}"
        head += f", run {self.run_id})" if self.run_id else ")"
        lines = [head] + [f"  {label}: {_one_line(value)}" for label, value in self.summary()]
        for i, step in enumerate(self.steps):
            who = f" {step.agent}" if step.agent else ""
            lines.append(f"  [{i}] round {step.round} {step.kind}{who}: {_one_line(step.text, 100)}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(f"{type(self).__name__}(...)" if cycle else str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        summary = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{_pre(v)}</td></tr>"
                          for k, v in self.summary())
        rows = "".join(_html_step(i, s) for i, s in enumerate(self.steps))
        return (f"<div class='reflectnb-result'><b>{esc(type(self).__name__)}</b> "
                f"<code>{esc(self.strategy)}</code>{_run(self.run_id)}"
                f"<table>{summary}</table>"
                "<table><tr><th>#</th><th>round</th><th>kind</th><th>agent</th><th>text</th>"
                f"<th>tokens</th><th>s</th></tr>{rows}</table></div>")


def _row(index: int, step: Step) -> dict[str, Any]:
    gen = step.generation
    return {"step": index, "round": step.round, "kind": step.kind, "agent": step.agent,
            "parent": step.parent, "text": step.text,
            "tokens": gen.completion_tokens if gen else 0, "prompt_tokens": gen.prompt_tokens if gen else 0,
            "seconds": gen.seconds if gen else 0.0, "finish_reason": gen.finish_reason if gen else None,
            "model": gen.model if gen else None, "interrupted": bool(step.attributes.get("interrupted")),
            "attributes": dict(step.attributes)}


def _html_step(index: int, step: Step) -> str:
    gen = step.generation
    tokens = gen.completion_tokens if gen else 0
    seconds = f"{gen.seconds:.2f}" if gen else ""
    mark = " (interrupted)" if step.attributes.get("interrupted") else ""
    return (f"<tr><td>{index}</td><td>{step.round}</td><td>{html.escape(step.kind + mark)}</td>"
            f"<td>{html.escape(step.agent or '')}</td><td>{_pre(step.text)}</td>"
            f"<td>{tokens}</td><td>{seconds}</td></tr>")


def _pre(text: str) -> str:
    return f"<pre style='white-space:pre-wrap;margin:0'>{html.escape(str(text))}</pre>"


def _run(run_id: str | None) -> str:
    return f" run <code>{html.escape(run_id)}</code>" if run_id else ""


def _one_line(text: str, width: int = 200) -> str:
    return textwrap.shorten(" ".join(str(text).split()), width=width, placeholder=" …") or "''"


@dataclass
class DebateResult(LoopResult):
    """A debate's outcome (``method`` is ``"mad"`` or ``"du"``).

    ``transcript()`` lists the turns; ``agent_answers`` holds each agent's final
    parsed answer and ``votes`` the tally (Du); ``verdicts`` the moderator's
    verdicts round by round and ``judge`` the final judge's (MAD).
    """

    method: str = ""
    agents: list[str] = field(default_factory=list)
    agent_answers: dict[str, str | None] = field(default_factory=dict)
    votes: dict[str, int] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    aggregator: str = ""

    def transcript(self) -> list[tuple[int, str | None, str, str]]:
        """``(round, agent, kind, text)`` for every step, in order."""
        return [(s.round, s.agent, s.kind, s.text) for s in self.steps]

    def summary(self) -> list[tuple[str, str]]:
        extra = [("method", self.method), ("agents", ", ".join(self.agents))]
        if self.votes:
            extra.append(("votes", ", ".join(f"{k!r}: {v}" for k, v in self.votes.items())))
        return super().summary() + extra
