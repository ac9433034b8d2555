"""One search run's bookkeeping: nodes and their reports, batched generation, batched evaluation.

Contract
--------
* :meth:`Search.add` creates a node (``node_id`` = creation index) and reports
  it; :meth:`Search.set` changes fields and re-reports the node only if
  something changed. Reports are snapshots (copies), so a recorder keeping
  them sees each state as it was.
* :meth:`Search.expand` turns a list of parent nodes into their children with
  ONE ``backend.generate`` call holding every prompt (``propose``: one prompt
  per parent, split into lines; ``sample``: ``k`` copies of each parent's
  prompt, one step each).
* :meth:`Search.evaluate` gives the nodes values, with at most ONE generate call
  (``value``: every uncached value prompt × ``n_evaluate``; ``vote``:
  ``n_evaluate`` copies of one vote prompt) or, for a user verifier / PRM, no
  call at all. Value failures land in ``attributes["value_error"]``.

Non-goals: the search policies themselves (bfs/dfs/mcts modules).
"""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Any, Callable, Sequence

from reflectnb.backends.base import Backend, GenerationParams, Prompt, as_messages
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.tree.result import TreeResult
from reflectnb.strategies.tree.tasks import Task
from reflectnb.strategies.tree.values import ValueFailure, VerifierError, call_value_fn, votes_from_outputs
from reflectnb.trace import Node


def prompt_text(prompt: Prompt) -> str:
    messages = as_messages(prompt)
    return prompt if messages is None else "\n\n".join(m.content for m in messages)  # type: ignore[return-value]


@dataclasses.dataclass
class Evaluation:
    """How nodes get values (see ``docs/trees.md``)."""

    mode: str = "value"  # value | vote | verifier | prm
    backend: Backend | None = None
    n_evaluate: int = 3
    params: GenerationParams | None = None
    fn: Callable[..., Any] | None = None
    on_error: str = "record"  # record | raise
    normalize: bool = False  # MCTS: model values scaled to [0, 1], function values clamped


class Search:
    """Nodes, reports and model calls of one tree-search run.

    ``ctx`` (a :class:`~reflectnb.strategies.context.RunContext` or a bare backend)
    gives the model, the recorder and the token path (``ctx.token``: recorder,
    ``on_token``, stop check); ``params`` are the search's own expansion settings.
    """

    def __init__(self, method: str, task: Task, ctx: RunContext | Backend, params: GenerationParams,
                 evaluation: Evaluation, seed: int | None = 0, options: dict[str, Any] | None = None):
        self.ctx = as_context(ctx)
        self.task, self.backend, self.params, self.evaluation = task, self.ctx.backend, params, evaluation
        self.recorder = self.ctx.recorder
        self.rng = random.Random(seed)
        self.nodes: list[Node] = []
        self.states: dict[int, str] = {}
        self.value_cache: dict[str, float] = {}
        self.result = TreeResult(method=method, question=task.question, nodes=self.nodes,
                                 options=dict(options or {}))

    # -- nodes --------------------------------------------------------------------------------------------

    def add(self, parent: Node | None, text: str, prompt: str | None = None, iteration: int = 0,
            **attributes: Any) -> Node:
        """Create, store and report a node."""
        node = Node(node_id=len(self.nodes), parent=None if parent is None else parent.node_id,
                    depth=0 if parent is None else parent.depth + 1, text=text, iteration=iteration,
                    prompt=prompt, attributes=dict(attributes))
        self.nodes.append(node)
        self.states[node.node_id] = "" if parent is None else self.states[parent.node_id] + text + "\n"
        self.report(node)
        return node

    def set(self, node: Node, **changes: Any) -> None:
        """Change node fields (``attributes`` are merged) and re-report if anything changed."""
        before = copy.deepcopy(node)
        attributes = changes.pop("attributes", None)
        for key, value in changes.items():
            setattr(node, key, value)
        if attributes:
            node.attributes.update(attributes)
        if node != before:
            self.report(node)

    def report(self, node: Node) -> None:
        self.recorder.on_node(dataclasses.replace(node, attributes=copy.deepcopy(node.attributes)))

    def state(self, node: Node) -> str:
        return self.states[node.node_id]

    def children(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n.parent == node.node_id]

    # -- generation ---------------------------------------------------------------------------------------

    def generate(self, backend: Backend, prompts: Sequence[Prompt], params: GenerationParams) -> list[str]:
        """One backend call for all ``prompts``; the seed moves on with every call."""
        if not prompts:
            return []
        if params.seed is not None:
            params = params.with_(seed=params.seed + self.result.generate_calls)
        self.result.generate_calls += 1
        self.result.prompts_sent += len(prompts)
        gens = backend.generate(list(prompts), params, on_token=self.ctx.token)
        return [g.text for g in gens]

    def expand(self, parents: Sequence[Node], mode: str, k: int, iteration: int,
               dedupe: bool = False) -> list[list[Node]]:
        """Children of every parent from ONE generate call (``k`` per parent at most)."""
        per_parent = 1 if mode == "propose" else k
        prompts = [self._expand_prompt(p, mode) for p in parents for _ in range(per_parent)]
        texts = self.generate(self.backend, prompts, self.params)
        out = []
        for i, parent in enumerate(parents):
            rows = texts[i * per_parent:(i + 1) * per_parent]
            steps = self.task.parse_proposals(rows[0]) if mode == "propose" else \
                [self.task.parse_step(t) for t in rows]
            steps = [s for s in steps if s]
            if dedupe:
                steps = list(dict.fromkeys(steps))
            prompt = prompt_text(prompts[i * per_parent])
            out.append([self.add(parent, s, prompt, iteration) for s in steps[:k]])
        return out

    def _expand_prompt(self, node: Node, mode: str) -> Prompt:
        state = self.state(node)
        return self.task.propose_prompt(state) if mode == "propose" else self.task.sample_prompt(state)

    # -- evaluation ---------------------------------------------------------------------------------------

    def evaluate(self, nodes: Sequence[Node]) -> list[float | None]:
        """Give every node a value (stored on the node and reported); returns the values."""
        outcomes = self.score_states([self.state(n) for n in nodes], dedupe=True)
        for node, (value, attributes) in zip(nodes, outcomes):
            self.set(node, value=value, attributes=attributes)
            if "value_error" in attributes:
                self.fail(f"node {node.node_id}", self.state(node), attributes["value_error"])
        return [n.value for n in nodes]

    def fail(self, where: str, state: str, message: str) -> None:
        """Raise :class:`VerifierError` if the run was asked to stop on value errors."""
        if self.evaluation.on_error == "raise":
            raise VerifierError(f"the {self.evaluation.mode} function {message} on {where} (state "
                                f"{state[:60]!r}); fix it, or pass on_value_error='record' to record the "
                                "error on the node and go on")

    def score_states(self, states: Sequence[str], dedupe: bool = False) -> list[tuple[float | None, dict]]:
        """``(value, attributes)`` per state, with at most one generate call."""
        if not states:
            return []
        mode = self.evaluation.mode
        if mode in ("verifier", "prm"):
            return [self._function_value(s) for s in states]
        if mode == "vote":
            return self._vote_values(states)
        return self._model_values(states, dedupe)

    def _function_value(self, state: str) -> tuple[float | None, dict]:
        ev = self.evaluation
        args = (state,) if ev.mode == "verifier" else (self.task.question, state)
        got = call_value_fn(ev.fn, *args)  # type: ignore[arg-type]
        if isinstance(got, ValueFailure):
            return None, {"value_error": got.message}
        return (min(max(got, 0.0), 1.0) if ev.normalize else got), {}

    def _model_values(self, states: Sequence[str], dedupe: bool) -> list[tuple[float | None, dict]]:
        ev = self.evaluation
        todo: dict[str, Prompt] = {}
        for state in states:
            prompt = self.task.value_prompt(state)
            if prompt_text(prompt) not in self.value_cache:
                todo.setdefault(prompt_text(prompt), prompt)
        copies = 1 if (ev.params or self.params).temperature == 0 else ev.n_evaluate
        texts = self.generate(ev.backend or self.backend, [p for p in todo.values() for _ in range(copies)],
                              ev.params or self.params)
        outputs = {key: texts[i * copies:(i + 1) * copies] * (ev.n_evaluate // copies)
                   for i, key in enumerate(todo)}
        return self._assign_model_values(states, outputs, dedupe)

    def _assign_model_values(self, states: Sequence[str], outputs: dict[str, list[str]],
                             dedupe: bool) -> list[tuple[float | None, dict]]:
        normalize = self.evaluation.normalize
        scale = self.evaluation.n_evaluate * max(self.task.value_map.values()) if normalize else 1.0
        seen: set[str] = set()
        out: list[tuple[float | None, dict]] = []
        for state in states:
            key = prompt_text(self.task.value_prompt(state))
            if dedupe and state in seen:  # ToT: a duplicate state in the same layer is worth 0
                out.append((0.0, {"duplicate": True}))
                continue
            seen.add(state)
            if key in outputs and key not in self.value_cache:
                self.value_cache[key] = self.task.value_of(state, outputs[key])
                extra = {"evaluations": outputs[key]}
            else:
                extra = {"value_cached": True}
            value = self.value_cache[key] / scale
            out.append((min(value, 1.0) if normalize else value, extra))
        return out

    def _vote_values(self, states: Sequence[str]) -> list[tuple[float | None, dict]]:
        ev = self.evaluation
        prompt = self.task.vote_prompt(list(states))
        texts = self.generate(ev.backend or self.backend, [prompt] * ev.n_evaluate, ev.params or self.params)
        votes = votes_from_outputs(texts, len(states))
        scale = ev.n_evaluate if ev.normalize else 1
        return [(count / scale, {"votes": count}) for count in votes]

    # -- the end ------------------------------------------------------------------------------------------

    def finish(self, best: Node | None, stop_reason: str) -> TreeResult:
        """Mark the best path (``attributes['best']``), set the answer and stop reason."""
        result = self.result
        result.stop_reason = stop_reason
        path: list[Node] = []
        current = best
        while current is not None:
            path.append(current)
            current = None if current.parent is None else self.nodes[current.parent]
        path.reverse()
        result.best_path = [n.node_id for n in path]
        if best is not None:
            result.answer = self.task.answer(self.state(best))
            for node in path[:-1]:
                self.set(node, attributes={"best": True})
            self.set(best, attributes={"best": True, "answer": result.answer})
        return result
