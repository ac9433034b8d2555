"""Plain trace values and the recorder protocol that strategies report through.

Contract
--------
* Everything here is a plain dataclass with ``to_dict()``: no database ids, no
  torch, no DuckDB. Identity (run ids, step ids) belongs to the trace store.
* Strategies, backends and decoding hooks *report* what happened by calling a
  :class:`Recorder`. The trace store (``reflectnb.store``) implements one that
  writes to DuckDB; :class:`NullRecorder` drops everything; :class:`ListRecorder`
  keeps everything in memory (tests, and runs with tracing switched off).

Non-goals: formatting, display, persistence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

ROLES = ("system", "user", "assistant")


def _plain(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


@dataclass
class Message:
    """One chat message. ``name`` optionally names the agent that wrote it."""

    role: str
    content: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def to_openai(self) -> dict[str, str]:
        """The message as the OpenAI chat protocol (and chat templates) expect it."""
        return {"role": self.role, "content": self.content}


@dataclass
class TokenEvent:
    """One generated token, as a streamer sees it.

    ``position`` counts generated tokens from 0 for each row of a batch;
    ``row`` is the index of the prompt in the batch the token belongs to.
    ``logprob`` and ``entropy`` (natural log) come from the distribution the
    token was sampled from, after logits processors. ``top`` holds the most
    likely alternatives as ``(text, logprob)`` pairs when asked for.
    """

    row: int
    position: int
    token_id: int
    text: str
    logprob: float | None = None
    entropy: float | None = None
    is_reflection: bool = False
    schedule_value: float | None = None
    intervention: str | None = None
    top: list[tuple[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Generation:
    """The result of one generation: the text plus its per-token record."""

    text: str
    model: str
    prompt: str | list[Message]
    tokens: list[TokenEvent] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # stop | length | repetition | interrupted | error
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None  # set by ``reflectnb.generate`` when the generation is traced
    cached_tokens: int | None = None  # prompt tokens a server served from its prefix cache, if it says

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Step:
    """One step of a loop: a draft, feedback, a critique, a debate turn, a verdict.

    ``kind`` says what the step is (``draft``, ``feedback``, ``refine``,
    ``critique``, ``argument``, ``moderator``, ``judge`` …), ``agent`` who
    produced it, ``round`` which round (from 0). ``parent`` is the index of the
    step this one answers, within the same run, or ``None``.
    """

    kind: str
    text: str
    round: int = 0
    agent: str | None = None
    role: str = "assistant"
    parent: int | None = None
    generation: Generation | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Node:
    """One node of a reasoning tree; ``node_id`` and ``parent`` are local to the run."""

    node_id: int
    parent: int | None
    depth: int
    text: str
    value: float | None = None
    visits: int = 0
    status: str = "expanded"  # expanded | pruned | selected | terminal
    iteration: int = 0
    prompt: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Score:
    """A verdict or score about a step or node (``target`` is its index/id)."""

    name: str
    value: float | None = None
    label: str | None = None
    explanation: str | None = None
    target_step: int | None = None
    target_node: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@runtime_checkable
class Recorder(Protocol):
    """What a running loop reports to. All methods must be cheap and never raise."""

    def on_token(self, event: TokenEvent) -> None: ...

    def on_step(self, step: Step) -> int: ...

    def on_node(self, node: Node) -> None: ...

    def on_score(self, score: Score) -> None: ...


class NullRecorder:
    """A recorder that drops everything (tracing switched off)."""

    def on_token(self, event: TokenEvent) -> None:
        pass

    def on_step(self, step: Step) -> int:
        return -1

    def on_node(self, node: Node) -> None:
        pass

    def on_score(self, score: Score) -> None:
        pass


class ListRecorder:
    """A recorder that keeps everything in lists; ``on_step`` returns the step index."""

    def __init__(self) -> None:
        self.tokens: list[TokenEvent] = []
        self.steps: list[Step] = []
        self.nodes: list[Node] = []
        self.scores: list[Score] = []

    def on_token(self, event: TokenEvent) -> None:
        self.tokens.append(event)

    def on_step(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def on_node(self, node: Node) -> None:
        self.nodes.append(node)

    def on_score(self, score: Score) -> None:
        self.scores.append(score)


class FanOut:
    """Send every report to several recorders (e.g. the trace store and a live view)."""

    def __init__(self, *recorders: Recorder) -> None:
        self.recorders = [r for r in recorders if r is not None]

    def on_token(self, event: TokenEvent) -> None:
        for r in self.recorders:
            r.on_token(event)

    def on_step(self, step: Step) -> int:
        index = -1
        for r in self.recorders:
            got = r.on_step(step)
            index = got if index < 0 else index
        return index

    def on_node(self, node: Node) -> None:
        for r in self.recorders:
            r.on_node(node)

    def on_score(self, score: Score) -> None:
        for r in self.recorders:
            r.on_score(score)
