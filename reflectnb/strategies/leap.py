"""LeaP, Learning from Peers (Luo et al. 2025, arXiv 2505.07787; reference code ``tongxuluo/LeaP``).

``paths`` reasoning paths work on the same question. Every ``interval`` (T)
tokens each running path is cut at its last paragraph break (``"\\n\\n"``; a
segment without one is kept whole), writes a short summary ("In short, my
current conclusions are that …", at most ``summary_tokens``) inside
``<summarize> </summarize>``, and then reads ``peers`` (k) other paths'
summaries inside ``<comment> </comment>``, chosen by a router (dispersed,
clustered, hybrid, random; see :mod:`reflectnb.strategies.leap_router`).
Then it goes on reasoning. A path is a raw-text continuation of one prompt
(the question under the model's chat template where the backend has one),
as in the reference.

Turns: ``turns`` reasoning segments with an exchange between each two
(the reference's ``max_turns``: 5 turns, 4 exchanges). A path whose segment
ends before T tokens (end of text, a stop string, the repetition stop) has
finished: it drops out of later exchanges, as in the reference. Paths still
running after the last turn are asked for their answer ("… **Final Answer**
\\boxed{"). The answer is the majority of the paths' answers (``ctx.answer`` on
what each path wrote after its last comment; ties go to the first path).

Batching: the segments of one turn are one ``generate`` call, the summaries
of one exchange another, the final answers a third, when the backend
``can_batch`` (else one call per path).

Trace: steps ``segment`` / ``summary`` / ``final`` with ``agent`` = the path
(``"path 1"`` …) and ``round`` = the turn. A segment after an exchange carries
the routing in its attributes: ``received_from`` (path names, in reading
order), ``received_steps`` (their summary steps), ``router`` and ``distances``
(normalized Levenshtein distance to every other running path's summary); a
cut segment carries the ``dropped`` text. ``LeapResult.routing`` lists the same.

Settings: ``ctx.params`` is the sampling (temperature, top-p, seed) and
``ctx.params.max_new_tokens`` the budget per call: T and ``summary_tokens``
must fit in it. With greedy decoding (temperature 0) every path writes the
same text; use sampling (the reference: 0.6, top-p 0.95). :data:`LEAP_REFERENCE`
holds the reference's sizes, the function defaults are sized for the 135M
model on a CPU.

Non-goals: the reference's randomly drawn summary phrasings (one fixed,
replaceable phrasing here), min-p sampling, LeaP-T (fine-tuned models).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from reflectnb.backends.base import Backend, GenerationParams
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import Call, Engine, choice, positive_int, run_loop
from reflectnb.strategies.leap_router import ROUTERS, distance_matrix, route
from reflectnb.strategies.results import LoopResult
from reflectnb.strategies.spec import option, register_strategy
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.strategies.voting import majority, normalize
from reflectnb.trace import Generation, Message

TEMPLATES: dict[str, TemplateSpec] = {
    "question": TemplateSpec(
        "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}. From time to time "
        "you will summarize your progress inside <summarize> </summarize> and read your peers' summaries inside "
        "<comment> </comment>.", required=("question",)),
    "recap": TemplateSpec("Wait, let me quickly recap what I've concluded so far."),
    "summary": TemplateSpec("In short, my current conclusions are that"),
    "peer": TemplateSpec('Peer {number}: "{summary}"', required=("summary",), optional=("number", "path")),
    "comment": TemplateSpec(
        " <comment> {peers} </comment>\n\nHmm, it seems that my peers have given me some comments, so let me "
        "check if anyone's conclusions are different from mine before I continue my own reasoning.\n\n",
        required=("peers",)),
    "no_comment": TemplateSpec(" <comment> No comments </comment>\n\nHmm, there are no comments, so let's "
                               "continue reasoning.\n\n"),
    "final": TemplateSpec("\n\nOh, I think I have found the final answer.\n\n**Final Answer** \\boxed{{"),
}

# The reference's sizes (scripts/leap_7B.sh): pass both, e.g.
# leap(ctx.with_(params=LEAP_REFERENCE_PARAMS), question, **LEAP_REFERENCE). The script also sets min_p 0.05.
LEAP_REFERENCE: dict[str, Any] = {"paths": 4, "turns": 5, "interval": 2048, "peers": 2, "router": "dispersed",
                                  "summary_tokens": 256}
LEAP_REFERENCE_PARAMS = GenerationParams(max_new_tokens=2048, temperature=0.6, top_p=0.95)
STOP_REASONS = ("max_turns", "all_finished", "interrupted")
_CLOSE = "</summarize>"


@dataclass
class LeapResult(LoopResult):
    """LeaP's outcome: each path's answer and text, the vote, and who read whose summary.

    ``routing`` has one row per path and exchange: ``{"turn", "path",
    "received_from", "distances"}``; ``texts`` holds each path's whole
    continuation (segments, summaries, comments).
    """

    paths: list[str] = field(default_factory=list)
    router: str = ""
    peers: int = 0
    interval: int = 0
    path_answers: dict[str, str | None] = field(default_factory=dict)
    votes: dict[str, int] = field(default_factory=dict)
    routing: list[dict[str, Any]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)

    def received(self, turn: int) -> dict[str, list[str]]:
        """``{path: [peers whose summaries it read]}`` after the exchange of ``turn``."""
        return {row["path"]: row["received_from"] for row in self.routing if row["turn"] == turn}

    def summary(self) -> list[tuple[str, str]]:
        extra = [("paths", ", ".join(self.paths)), ("router", f"{self.router}, k = {self.peers}, T = {self.interval}")]
        if self.votes:
            extra.append(("votes", ", ".join(f"{k!r}: {v}" for k, v in self.votes.items())))
        return super().summary() + extra


def leap(ctx: RunContext | Backend, question: str, *, paths: int = 4, turns: int = 3, interval: int = 64,
         peers: int = 2, router: str = "hybrid", summary_tokens: int = 32, seed: int = 0,
         templates: Mapping[str, Any] | None = None) -> LeapResult:
    """Run LeaP: ``paths`` paths, ``turns`` segments of ``interval`` tokens, summaries routed between them.

    Parameters
    ----------
    ctx : RunContext or Backend
        The run (model, sampling settings, recorder, live callbacks, answer rule).
    question : str
    paths : int
        P, at least 2.
    turns : int
        Reasoning segments per path (the reference: 5).
    interval : int
        T, tokens per segment (the reference: 2048); at most ``ctx.params.max_new_tokens``.
    peers : int
        k, summaries each path reads per exchange; -1 (or any k >= P - 1) means every other path.
    router : "dispersed", "clustered", "hybrid" or "random"
    summary_tokens : int
        The longest summary (and final answer) in tokens (the reference: 256).
    seed : int
        Seeds the random router.
    templates : dict, optional
        Replacements for :data:`TEMPLATES`.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> def script(prompt, i):  # a final answer, a summary, else a long segment
    ...     return "4}" if prompt.endswith("{") else " 2 + 2 = 4." if prompt.endswith("that") else "I add 2 and 2 " * 3
    >>> model = ScriptedBackend(script)
    >>> result = leap(model, "2 + 2?", paths=3, turns=2, interval=4)
    >>> result.answer, result.received(0)["path 1"], [len(c.prompts) for c in model.calls]
    ('4', ['path 2', 'path 3'], [3, 3, 3, 3])
    """
    ctx = as_context(ctx)
    _check(ctx.params, paths, turns, interval, peers, router, summary_tokens)
    t = resolve_templates("leap", TEMPLATES, templates)
    names = [f"path {i + 1}" for i in range(paths)]
    result = LeapResult(strategy="leap", task=question, paths=names, router=router, peers=peers, interval=interval)
    loop = _Loop(Engine(result, ctx), ctx, question, t, names, turns, interval, peers, router, summary_tokens, seed)
    return run_loop(result, loop.run)


def _check(params: GenerationParams, paths: Any, turns: Any, interval: Any, peers: Any, router: Any,
           summary_tokens: Any) -> None:
    _two_or_more("paths", paths)
    for name, value in (("turns", turns), ("interval", interval), ("summary_tokens", summary_tokens)):
        positive_int(name, value)
    _peers("peers", peers)
    choice("router", router, ROUTERS)
    for name, value in (("interval", interval), ("summary_tokens", summary_tokens)):
        if value > params.max_new_tokens:
            raise OptionError(f"`{name}` ({value} tokens) is larger than the token budget "
                              f"max_new_tokens={params.max_new_tokens}; lower `{name}` or raise the budget "
                              f"(max_tokens, or params.with_(max_new_tokens={value}))")


def _two_or_more(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value < 2:
        raise OptionError(f"LeaP needs at least two paths (got {name}={value}): a lone path has no peers to "
                          "learn from; use paths=2 or more")
    return positive_int(name, value)


def _peers(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise OptionError(f"`{name}` must be -1 (every other path) or a positive integer, got {value!r}")
    return value


class _Loop:
    def __init__(self, engine: Engine, ctx: RunContext, question: str, t: dict[str, Any], names: list[str],
                 turns: int, interval: int, peers: int, router: str, summary_tokens: int, seed: int):
        self.e, self.ctx, self.t, self.names, self.turns = engine, ctx, t, names, turns
        self.r: LeapResult = engine.result
        self.backend, self.peers, self.router, self.rng = ctx.backend, peers, router, random.Random(seed)
        self.head = _head(ctx.backend, render(t["question"], question=question))
        base = ctx.params
        self.segment_params = base.with_(max_new_tokens=interval)
        self.summary_params = base.with_(max_new_tokens=summary_tokens, stop=(*base.stop, _CLOSE))
        self.final_params = base.with_(max_new_tokens=summary_tokens)
        self.trigger = f"{t['recap']} <summarize> {t['summary']}"
        self.text = {n: "" for n in names}  # each path's continuation after the head
        self.own = {n: "" for n in names}  # what it wrote after its last comment (its answer is read here)
        self.last: dict[str, int] = {}  # each path's latest step
        self.inbox: dict[str, dict[str, Any]] = {}  # routing attributes for each path's next segment
        self.running = list(names)

    def run(self) -> None:
        for turn in range(self.turns):
            if not self.running:  # every path has finished
                break
            self.r.rounds = turn + 1
            exchange = turn < self.turns - 1
            self._segments(turn, exchange)
            if exchange and self.running:
                self._exchange(turn)
        self.r.stop_reason = "max_turns" if self.running else "all_finished"
        self._final(self.turns - 1)
        self._aggregate()

    def _generate(self, names: list[str], prompts: list[str], calls: list[Call],
                  params: GenerationParams) -> list[Generation]:
        """One call for the whole turn when the backend batches, else one per path."""
        groups = [range(len(names))] if self.backend.can_batch else [[i] for i in range(len(names))]
        return [gen for g in groups for gen in self.e.generate(
            self.backend, [prompts[i] for i in g], [calls[i] for i in g], params)]

    def _segments(self, turn: int, exchange: bool) -> None:
        names = list(self.running)
        calls = [Call("segment", turn, agent=n, parent=self.last.get(n), attributes=self.inbox.pop(n, {}))
                 for n in names]
        gens = self._generate(names, [self.head + self.text[n] for n in names], calls, self.segment_params)
        for name, call, gen in zip(names, calls, gens):
            finished = gen.finish_reason != "length"
            kept, dropped = (gen.text, "") if finished or not exchange else cut_at_paragraph(gen.text)
            self.text[name] += kept
            self.own[name] = kept
            extra: dict[str, Any] = {"dropped": dropped} if dropped else {}
            if finished:
                self.running.remove(name)
                extra["parsed_answer"] = self.ctx.answer(kept)
            self.last[name] = self.e.record(call, gen, text=kept, **extra)

    def _exchange(self, turn: int) -> None:
        names = list(self.running)
        calls = [Call("summary", turn, agent=n, parent=self.last[n]) for n in names]
        gens = self._generate(names, [self.head + self.text[n] + self.trigger for n in names], calls,
                              self.summary_params)
        summaries = []
        for name, call, gen in zip(names, calls, gens):
            body = _close_summary(gen.text)
            summaries.append(f"{self.t['summary']}{body}".strip())
            self.text[name] += f"{self.trigger}{body} {_CLOSE}"
            self.last[name] = self.e.record(call, gen, text=summaries[-1])
        self._route(turn, names, summaries)

    def _route(self, turn: int, names: list[str], summaries: list[str]) -> None:
        matrix = distance_matrix(summaries)
        for i, name in enumerate(names):
            picked = route(self.router, i, matrix[i], self.peers, self.rng)
            lines = "\n".join(render(self.t["peer"], number=m + 1, summary=summaries[j], path=names[j])
                              for m, j in enumerate(picked))
            self.text[name] += render(self.t["comment"], peers=lines) if picked else render(self.t["no_comment"])
            distances = {names[j]: round(matrix[i][j], 4) for j in range(len(names)) if j != i}
            received = [names[j] for j in picked]
            self.inbox[name] = {"received_from": received, "received_steps": [self.last[n] for n in received],
                                "router": self.router, "distances": distances}
            self.r.routing.append({"turn": turn, "path": name, "received_from": received, "distances": distances})

    def _final(self, turn: int) -> None:
        names = list(self.running)
        if not names:
            return
        lead = render(self.t["final"])
        calls = [Call("final", turn, agent=n, parent=self.last[n]) for n in names]
        gens = self._generate(names, [self.head + self.text[n] + lead for n in names], calls, self.final_params)
        for name, call, gen in zip(names, calls, gens):
            said = lead + gen.text + ("}" if lead.endswith("{") and "}" not in gen.text else "")
            self.text[name] += said
            self.own[name] += said
            self.last[name] = self.e.record(call, gen, text=said.strip(),
                                            parsed_answer=self.ctx.answer(self.own[name]))

    def _aggregate(self) -> None:
        answers = {n: self.ctx.answer(self.own[n]) for n in self.names}
        winner, self.r.votes = majority(list(answers.values()))
        self.r.path_answers, self.r.texts, self.r.answer = answers, dict(self.text), winner or ""
        for name, answer in answers.items():
            agrees = None if answer is None or winner is None else float(normalize(answer) == normalize(winner))
            self.e.score("agrees_with_majority", agrees, self.last[name], label=answer)


def cut_at_paragraph(text: str) -> tuple[str, str]:
    """``(kept, dropped)``: ``text`` up to and including its last ``"\\n\\n"``; a text without one is kept whole
    and gets the break added, so the summary always starts a paragraph.

    Examples
    --------
    >>> cut_at_paragraph("First.\\n\\nSecond, half wri"), cut_at_paragraph("no break")
    (('First.\\n\\n', 'Second, half wri'), ('no break\\n\\n', ''))
    """
    at = text.rfind("\n\n")
    if at < 0:
        return text.rstrip() + "\n\n", ""
    return text[: at + 2], text[at + 2:]


def _close_summary(text: str) -> str:
    """The summary's words without a closing tag or the start of one (a summary cut by its token limit)."""
    text = text.split(_CLOSE)[0].rstrip()
    for k in range(len(_CLOSE) - 1, 1, -1):
        if text.endswith(_CLOSE[:k]):
            return text[:-k].rstrip()
    return text


def _head(backend: Backend, prompt: str) -> str:
    """The question as the model sees it, ready to be continued: under its chat template where it has one."""
    if hasattr(backend, "render"):
        return backend.render([Message("user", prompt)])
    return prompt + "\n\n"


# -- the registered method (reflectnb.leap, %%leap, %reflect_eval leap(...)) ------------------------------------

@dataclass
class LeapOptions:
    paths: int = option(4, "P: reasoning paths (at least 2; the reference: 4)", short="-p", check=_two_or_more)
    turns: int = option(3, "reasoning segments per path, with an exchange between each two (the reference: 5)",
                        check=positive_int)
    interval: int = option(64, "T: tokens per segment, at most max_tokens (the reference: 2048)", check=positive_int)
    peers: int = option(2, "k: peer summaries each path reads per exchange; -1 shares all (the reference: 2)",
                        short="-k", check=_peers)
    router: str = option("hybrid", "which peers: least similar, most similar, half each, or random",
                         choices=ROUTERS)
    summary_tokens: int = option(32, "longest summary (and final answer) in tokens (the reference: 256)",
                                 check=positive_int)
    templates: Any = option(None, "a dict of prompt templates (replacing leap.TEMPLATES)", variable=True)


@register_strategy("leap", options=LeapOptions, view="debate", eval_task="question", task_name="question",
                   sampling={"temperature": 0.6, "max_tokens": 64},
                   summary="Learning from Peers: parallel reasoning paths exchange short summaries every T tokens "
                           "(LeaP, Luo et al. 2025).",
                   calls=lambda o: (o.paths * 2 * o.turns, f"paths {o.paths:,} x (turns {o.turns:,} segments + "
                                    f"{o.turns - 1:,} summaries + 1 answer)"),
                   eval_answers=lambda result, answer: ([answer(result.answer) if result.answer else None], 0))
def _run(ctx: RunContext, question: str, o: LeapOptions) -> LeapResult:
    seed = ctx.params.seed if ctx.params.seed is not None else 0
    return leap(ctx, str(question), paths=o.paths, turns=o.turns, interval=o.interval, peers=o.peers,
                router=o.router, summary_tokens=o.summary_tokens, seed=seed, templates=o.templates)
