"""Speculative Thinking: a small model reasons, a larger one takes over where it reflects.

After Yang et al., "Speculative Thinking: Enhancing Small-Model Reasoning with
Large Model Guidance at Inference Time" (arXiv 2504.12329; reference code
``uservan/speculative_thinking``, whose keyword lists, lengths and recap
escalation are followed here). The small model is ``ctx.backend``; the large
one is ``large=`` or ``ctx.model("large")``. The loop:

1. The small model writes until a paragraph break (``"\\n\\n"``, a stop string).
2. At the break, if ``negatives >= recap_after``, the recap words (``"Let me
   check whether there are some wrong steps:"``) are appended and the large
   model writes ``recap_tokens``; then the recap length grows by 25 (at most
   200), the threshold by 5 (at most 30) and the count restarts (as in the
   reference's configs).
3. Otherwise the small model drafts ``segment_tokens``. If the draft holds a
   reflection word (:data:`KEYWORDS`, see :func:`classify`), the large model
   writes ``takeover_tokens`` from the *same text* and its text replaces the
   draft (the reference's ``choose_large``). If that text holds a verify word,
   the large model goes on for ``verify_tokens``. A takeover whose text reads
   negative (or as a tie) counts towards ``negatives``. A draft without
   reflection words is kept.
4. Repeat until the kept text reaches ``max_tokens``, or a model ends its text
   (a call that stops before its limit with no paragraph break to follow).

Handover is by **text**: each call gets the chat prompt plus the assistant text
so far, so the two models may have different tokenizers. For a backend with
``render`` (``smollm2-135m``, ``hf:…``) the prompt is the exact chat template
with the generation prompt, followed by the text so far (a raw-text prompt: a
chat list ending in an assistant message would open a new turn). Other
backends (``openai:…``, scripted) get the ``continue`` template as raw text
(``/completions``; a chat-only server sees it as one user message). Every step
says in its attributes whether the tokenizers are the same, ``different`` or
``unknown`` (a server's tokenizer is not visible), and whether one backend
plays both roles (``same_backend``: allowed, e.g. for a dry run, and marked).

Stop reasons: ``finished`` (a model ended its text), ``max_tokens``,
``repetition`` (the small model's repetition stop), ``interrupted``.

Non-goals: token-level speculative decoding (this is segment-level handover).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

from reflectnb.backends.base import Backend
from reflectnb.errors import OptionError
from reflectnb.strategies.context import RunContext, as_context
from reflectnb.strategies.engine import Call, Engine, check_backend, positive_int, run_loop
from reflectnb.strategies.results import LoopResult
from reflectnb.strategies.spec import option, register_strategy
from reflectnb.strategies.templates import TemplateSpec, render, resolve_templates
from reflectnb.trace import Generation, Message

KEYWORDS: dict[str, tuple[str, ...]] = {
    "negative": ("wait", "alternatively", "hold on", "another"),
    "verify": ("verify", "think again", "recap", "check"),
    "positive": ("yeah", "yes", "final answer", "confident"),
}
PARAGRAPH = "\n\n"
TEMPLATES: dict[str, TemplateSpec] = {
    "system": TemplateSpec("", optional=("task",)),
    "question": TemplateSpec("{task}", required=("task",)),
    "continue": TemplateSpec("{task}\n\n{text}", required=("text",), optional=("task",)),
}
SETTINGS: dict[str, Any] = {
    "recap_words": "Let me check whether there are some wrong steps:",
    "recap_growth": 25, "recap_tokens_max": 200,  # the reference's add_each_recap, max_recap_token_num
    "recap_after_growth": 5, "recap_after_max": 30,  # add_each_neg, max_negative_num
}
STOP_REASONS = ("finished", "max_tokens", "repetition", "interrupted")
_PATTERNS = {kind: [(word, re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, word.split())) + r"(?!\w)",
                                      re.IGNORECASE)) for word in words] for kind, words in KEYWORDS.items()}


class Signal(NamedTuple):
    """What :func:`classify` found: the trigger class, the word, and the counts per class."""

    kind: str | None  # "negative" | "verify" | "positive" | None
    keyword: str | None
    counts: dict[str, int]

    @property
    def negative(self) -> bool:
        """Reads as doubt: negative and verify words outnumber or tie the positive ones."""
        return self.kind in ("negative", "verify")


def classify(text: str) -> Signal:
    """The reflection signal of a segment: whole words, any case; a positive/negative tie is negative.

    Verify words count on the negative side (as in the reference's sentiment
    check). The class is ``positive`` when positive words outnumber the others,
    else the class of the earliest negative-side word, which is the keyword.

    Examples
    --------
    >>> classify("Yes, wait.").kind, classify("Yes, wait.").keyword
    ('negative', 'wait')
    >>> classify("Let me verify. Yes, yes.").kind
    'positive'
    >>> classify("Checking: awaited, yesterday").kind is None  # whole words only
    True
    """
    hits = {kind: sorted((m.start(), word) for word, pattern in patterns for m in pattern.finditer(text))
            for kind, patterns in _PATTERNS.items()}
    counts = {kind: len(found) for kind, found in hits.items()}
    if not any(counts.values()):
        return Signal(None, None, counts)
    if counts["positive"] > counts["negative"] + counts["verify"]:
        return Signal("positive", hits["positive"][0][1], counts)
    _, word, kind = min((p, w, k) for k in ("negative", "verify") for p, w in hits[k])
    return Signal(kind, word, counts)


def verify_word(text: str) -> str | None:
    """The first verify word in ``text`` (whole word, any case), or ``None``."""
    found = sorted((m.start(), word) for word, pattern in _PATTERNS["verify"] for m in pattern.finditer(text))
    return found[0][1] if found else None


def tokenizer_relation(small: Backend, large: Backend) -> str:
    """``same`` / ``different`` / ``unknown``: whether the two backends share a vocabulary.

    Compared by vocabulary (``get_vocab()``), not by name: two checkpoints of
    one family share a tokenizer. A backend without a visible ``tokenizer``
    (a server, a scripted backend) gives ``unknown``.
    """
    if small is large:
        return "same"
    a, b = getattr(small, "tokenizer", None), getattr(large, "tokenizer", None)
    if a is None or b is None:
        return "unknown"
    if a is b:
        return "same"
    try:
        return "same" if type(a) is type(b) and a.get_vocab() == b.get_vocab() else "different"
    except (AttributeError, TypeError, NotImplementedError):  # a tokenizer without get_vocab
        return "unknown"


@dataclass
class SpeculativeResult(LoopResult):
    """Speculative Thinking's outcome: ``text`` is the combined reasoning (also ``answer``).

    ``takeovers`` counts drafts the large model replaced, ``recaps`` the recaps
    it wrote; :meth:`token_rows` labels each kept token with the model that wrote
    it (``TokenView(result.token_rows(), color_by="source")`` colours them; the
    strategies layer does not import widgets).
    """

    text: str = ""
    small_model: str = ""
    large_model: str = ""
    tokenizers: str = "unknown"
    same_backend: bool = False
    takeovers: int = 0
    recaps: int = 0
    kept_tokens: int = 0

    def kept_steps(self) -> list[Any]:
        """The steps whose text is in :attr:`text`, in order (replaced drafts left out)."""
        return [s for s in self.steps if s.attributes.get("kept")]

    def sources(self) -> list[tuple[str, str]]:
        """``(model role, text)`` per kept piece, in order; the recap words are ``inserted``."""
        out: list[tuple[str, str]] = []
        for step in self.kept_steps():
            if step.attributes.get("inserted"):
                out.append(("inserted", step.attributes["inserted"]))
            out.append((step.attributes["model"], step.generation.text if step.generation else step.text))
            if step.attributes.get("break"):
                out.append((step.attributes["model"], PARAGRAPH))
        return out

    def token_rows(self) -> list[dict[str, Any]]:
        """One dict per kept token with ``source`` (``small``/``large``/``inserted``), for ``TokenView``."""
        rows: list[dict[str, Any]] = []
        for step in self.kept_steps():
            role = step.attributes["model"]
            if step.attributes.get("inserted"):
                rows.append(_pseudo(step.attributes["inserted"], "inserted"))
            gen = step.generation
            rows += [{**t.to_dict(), "source": role} for t in (gen.tokens if gen else [])]
            joined = "".join(t.text for t in gen.tokens) if gen else ""
            if step.attributes.get("break") and PARAGRAPH not in joined[len(gen.text if gen else ""):]:
                rows.append(_pseudo(PARAGRAPH, role))  # the backend cut the break off its tokens
        for position, row in enumerate(rows):
            row["position"] = position
        return rows

    def summary(self) -> list[tuple[str, str]]:
        return super().summary() + [
            ("models", f"small {self.small_model}, large {self.large_model}"
                       + (" (one backend plays both)" if self.same_backend else "")),
            ("tokenizers", self.tokenizers), ("takeovers", str(self.takeovers)), ("recaps", str(self.recaps))]


def _pseudo(text: str, source: str) -> dict[str, Any]:
    return {"row": 0, "position": 0, "token_id": -1, "text": text, "source": source}


def speculative_thinking(ctx: RunContext | Backend, question: str, *, large: Backend | None = None,
                         segment_tokens: int = 20, takeover_tokens: int = 20, verify_tokens: int = 125,
                         max_tokens: int | None = None, recap_after: int = 15, recap_tokens: int = 125,
                         templates: Mapping[str, Any] | None = None) -> SpeculativeResult:
    """Run Speculative Thinking on ``question`` (see the module docstring).

    Parameters
    ----------
    ctx : RunContext or Backend
        The run; ``ctx.backend`` is the small model.
    question : str
    large : Backend, optional
        The large model (default ``ctx.model("large")``, i.e. ``models={"large": ...}``).
    segment_tokens, takeover_tokens, verify_tokens : int
        Draft length at a paragraph break; the large model's takeover length; its
        further length after a verify word (reference: 20, 20, 125).
    max_tokens : int, optional
        Most tokens of kept text (default ``ctx.params.max_new_tokens``); each call's
        limit is cut to what is left.
    recap_after, recap_tokens : int
        Negative takeovers before the large model recaps, and the first recap's
        length (reference: 15, 125; both grow after each recap).
    templates : dict, optional
        Replacements for :data:`TEMPLATES` and :data:`SETTINGS`.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> small = ScriptedBackend(["2 + 2 is 4.\\n\\nmore", "Wait, maybe 5?"], name="small")
    >>> big = ScriptedBackend(["It is 4."], name="big")
    >>> result = speculative_thinking(small, "2 + 2?", large=big, segment_tokens=3, takeover_tokens=3)
    >>> result.sources()
    [('small', '2 + 2 is 4.'), ('small', '\\n\\n'), ('large', 'It is 4.')]
    """
    ctx = as_context(ctx)
    large = _large_model(ctx, large)
    for name, value in (("segment_tokens", segment_tokens), ("takeover_tokens", takeover_tokens),
                        ("verify_tokens", verify_tokens), ("recap_after", recap_after),
                        ("recap_tokens", recap_tokens)):
        positive_int(name, value)
    max_tokens = ctx.params.max_new_tokens if max_tokens is None else positive_int("max_tokens", max_tokens)
    t = resolve_templates("speculative", TEMPLATES, templates, SETTINGS)
    if not isinstance(t["recap_words"], str) or not t["recap_words"].strip():
        raise OptionError(f"the 'recap_words' setting must be a non-empty str, got {t['recap_words']!r}")
    result = SpeculativeResult(strategy="speculative", task=question, small_model=ctx.backend.name,
                               large_model=large.name, same_backend=large is ctx.backend,
                               tokenizers=tokenizer_relation(ctx.backend, large))
    sizes = {"segment": segment_tokens, "takeover": takeover_tokens, "verify": verify_tokens,
             "max": max_tokens, "recap_after": recap_after, "recap": recap_tokens}
    loop = _Loop(Engine(result, ctx), ctx.backend, large, question, t, sizes)
    return run_loop(result, loop.run)


def _large_model(ctx: RunContext, large: Any) -> Backend:
    value = large if large is not None else ctx.models.get("large")
    if value is None:
        raise OptionError("Speculative Thinking needs a large model: pass `large=` (a Backend, e.g. "
                          "reflectnb.load_model('hf:<path>')), models={'large': ...} in the run context, "
                          "or `--large MODEL` to the magic")
    return check_backend("large", value)


class _Loop:
    """The small/large handover over one engine (state lives on ``engine.result``)."""

    def __init__(self, engine: Engine, small: Backend, large: Backend, question: str, t: dict[str, Any],
                 sizes: dict[str, int]):
        self.e, self.small, self.large, self.question, self.t = engine, small, large, question, t
        self.sizes = sizes
        self.base_params = engine.params
        self.r: SpeculativeResult = engine.result
        self.negatives = 0
        self.recap_after, self.recap_tokens = sizes["recap_after"], sizes["recap"]
        self.common = {"tokenizers": self.r.tokenizers, "same_backend": self.r.same_backend}

    def run(self) -> None:
        while self._left() > 0:
            if not self._reason():
                return
            if self._left() <= 0:
                break
            self.r.rounds += 1
            ended = self._recap() if self.negatives >= self.recap_after else self._segment()
            if ended:
                return self._stop("finished")
        self._stop("max_tokens")

    # -- the three moves ----------------------------------------------------------------------------------------

    def _reason(self) -> bool:
        """Small model up to the next paragraph break; False when the run ends here."""
        gen = self._ask(self.small, "reason", self._left(), (PARAGRAPH,))
        if gen.finish_reason == "stop" and not gen.text.strip():
            self._stop("finished")  # nothing before the next break: the model has ended its text
            return False
        self._keep(gen, "reason", "small", broke=gen.finish_reason == "stop")
        if gen.finish_reason not in ("stop", "length"):
            self._stop(gen.finish_reason)
            return False
        return True

    def _segment(self) -> bool:
        """Draft a segment; the large model takes over if it reflects. True when a model ended its text."""
        draft = self._ask(self.small, "draft", self.sizes["segment"])
        signal = classify(draft.text)
        if signal.kind is None:
            self._keep(draft, "segment", "small")
            return draft.finish_reason != "length"
        parent = self.e.record(Call("draft", self.r.rounds, agent="small"), draft, **self.common,
                               model="small", trigger=signal.kind, keyword=signal.keyword, kept=False)
        take = self._ask(self.large, "takeover", self.sizes["takeover"])
        self.r.takeovers += 1
        self._keep(take, "takeover", "large", parent, trigger=signal.kind, keyword=signal.keyword,
                   replaced_draft=draft.text)
        self.negatives += classify(take.text).negative
        word = verify_word(take.text)
        if take.finish_reason != "length" or word is None or self._left() <= 0:
            return take.finish_reason != "length"
        more = self._ask(self.large, "verify", self.sizes["verify"])
        self._keep(more, "verify", "large", len(self.r.steps) - 1, trigger="verify", keyword=word)
        return more.finish_reason != "length"

    def _recap(self) -> bool:
        """Append the recap words; the large model recaps; the recap grows and comes later next time."""
        words, negatives = self.t["recap_words"], self.negatives
        self.r.text += words
        gen = self._ask(self.large, "recap", self.recap_tokens)
        self.r.recaps += 1
        self._keep(gen, "recap", "large", trigger="recap", keyword=None, inserted=words, negatives=negatives,
                   recap_after=self.recap_after, recap_tokens=self.recap_tokens)
        self.negatives = 0
        self.recap_tokens = min(self.recap_tokens + self.t["recap_growth"], self.t["recap_tokens_max"])
        self.recap_after = min(self.recap_after + self.t["recap_after_growth"], self.t["recap_after_max"])
        return gen.finish_reason != "length"

    # -- helpers ------------------------------------------------------------------------------------------------

    def _left(self) -> int:
        return self.sizes["max"] - self.r.kept_tokens

    def _ask(self, backend: Backend, kind: str, limit: int, stop: tuple[str, ...] = ()) -> Generation:
        """One call from the text so far, at most ``limit`` tokens (and what the budget leaves)."""
        params = self.base_params.with_(max_new_tokens=max(1, min(limit, self._left())),
                                        stop=tuple(self.base_params.stop) + stop)
        role = "small" if kind in ("reason", "draft") else "large"
        call = Call(kind, self.r.rounds, agent=role, attributes={**self.common, "model": role})  # if interrupted
        return self.e.generate(backend, [self._prompt(backend)], [call], params)[0]

    def _prompt(self, backend: Backend) -> Any:
        """The chat prompt plus the assistant text so far (see the module docstring)."""
        system = render(self.t["system"], task=self.question)
        messages = ([Message("system", system)] if system else []) + [
            Message("user", render(self.t["question"], task=self.question))]
        template = getattr(backend, "render", None)
        if callable(template):
            return template(messages) + self.r.text
        return render(self.t["continue"], task=self.question, text=self.r.text) if self.r.text else messages

    def _keep(self, gen: Generation, kind: str, role: str, parent: int | None = None, *, broke: bool = False,
              **attributes: Any) -> int:
        """Append ``gen`` (and the paragraph break its stop string cut off) to the text; record its step."""
        self.r.text += gen.text + (PARAGRAPH if broke else "")
        self.r.answer = self.r.text
        self.r.kept_tokens += gen.completion_tokens or len(gen.tokens) or bool(gen.text)  # a count-less server still ends
        attributes.setdefault("trigger", None)
        attributes.setdefault("keyword", None)
        attributes.setdefault("replaced_draft", None)
        return self.e.record(Call(kind, self.r.rounds, agent=role, parent=parent), gen, **self.common,
                             model=role, kept=True, **({"break": True} if broke else {}), **attributes)

    def _stop(self, reason: str) -> None:
        if not self.r.stop_reason:
            self.r.stop_reason = reason


# -- the registered method (reflectnb.speculative, %%speculative, %reflect_eval speculative(...)) ----------------

@dataclass
class SpeculativeOptions:
    large: Any = option(None, "the large model that takes over where the small one (-m) reflects (required)",
                        model=True)
    segment_tokens: int = option(20, "tokens the small model drafts at each paragraph break (the reference: 20)",
                                 check=positive_int)
    takeover_tokens: int = option(20, "tokens the large model writes in place of a reflecting draft "
                                  "(the reference: 20)", check=positive_int)
    verify_tokens: int = option(125, "tokens the large model adds after a verify word (the reference: 125)",
                                check=positive_int)
    recap_after: int = option(15, "negative takeovers before the large model recaps; grows by 5 up to 30 "
                              "(the reference: 15)", check=positive_int)
    recap_tokens: int = option(125, "the first recap's length; grows by 25 up to 200 (the reference: 125)",
                               check=positive_int)
    templates: Any = option(None, "a dict of prompt templates and settings (replacing speculative.TEMPLATES "
                            "and SETTINGS)", variable=True)


@register_strategy("speculative", options=SpeculativeOptions, view="reflect",
                   sampling={"temperature": 0.6, "max_tokens": 256},
                   summary="Speculative Thinking: a small model reasons; at paragraph breaks where it reflects, "
                           "a larger model takes over (Yang et al. 2025).",
                   eval_answers=lambda result, answer: ([answer(result.answer) if result.answer else None], 0))
def _run(ctx: RunContext, question: Any, o: SpeculativeOptions) -> SpeculativeResult:
    return speculative_thinking(ctx, str(question), large=o.large, segment_tokens=o.segment_tokens,
                                takeover_tokens=o.takeover_tokens, verify_tokens=o.verify_tokens,
                                recap_after=o.recap_after, recap_tokens=o.recap_tokens, templates=o.templates)
