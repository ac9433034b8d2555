"""s1 budget forcing (Muennighoff et al. 2025; REFERENCE §1.7, repo ``simplescaling/s1`` @77272c6).

Contract
--------
* **Thinking** runs until end-of-thinking or the budget ``max_think``. The
  budget counts every thinking token, forced ``ignore_str`` tokens included,
  so the thinking is never longer than ``max_think`` (s1's lm-eval path cuts
  the joined thinking to the budget afterwards; counting up front gives the
  same bound without cutting text the model has already conditioned on).
* **Extension** ("ignore end-of-thinking N times"): when the model ends its
  thinking before the budget and fewer than ``num_ignore`` ends were ignored,
  the end is dropped, ``ignore_str`` is appended *exactly* (no space, no
  newline) and thinking goes on with at least one token (vLLM ``min_tokens=1``).
* **Answer**: then :func:`answer_delimiter` is appended (``"\\n"`` only if the
  text does not already end in a newline, then ``answer_start`` and
  ``answer_prefix``) and the model answers for up to ``max_answer`` tokens.
* **End of thinking.** s1 models (:meth:`BudgetForcing.s1`): thinking starts
  with ``<|im_start|>think`` and ends when the model emits ``<|im_start|>``
  (one token) or EOS. Instruct models without thinking tokens (SmolLM2,
  ``end_think=None``, the default): the end of thinking is the model's EOS,
  i.e. the point where it would end its reply; the answer delimiter is then
  ``"\\nFinal Answer:"``. A multi-token ``end_think`` string works as a stop
  string (cut off, not kept).

Non-goals: the ``"auto"`` budget of lm-eval (``max_think=None`` uses the room
left by ``max_new_tokens`` minus ``max_answer`` instead).
"""

from __future__ import annotations

from typing import Any

from reflectnb.controllers.base import Controller, check_int, check_str
from reflectnb.controllers.loop import Decoder


def answer_delimiter(text: str, answer_start: str, answer_prefix: str) -> str:
    """What budget forcing appends after the thinking: ``"\\n"`` if needed, the answer start, the prefix.

    Examples
    --------
    >>> answer_delimiter("so x = 3", "<|im_start|>answer\\n", "Final Answer:")
    '\\n<|im_start|>answer\\nFinal Answer:'
    >>> answer_delimiter("so x = 3\\n", "", "Final Answer:")
    'Final Answer:'
    """
    newline = "" if not text or text.endswith("\n") else "\n"
    return newline + answer_start + answer_prefix


class BudgetForcing(Controller):
    """Enforce a thinking budget and extend thinking by ignoring its end ``num_ignore`` times.

    Parameters
    ----------
    max_think : int or None
        Thinking budget in tokens (forced tokens included); None: the room left
        by ``params.max_new_tokens`` after ``max_answer``.
    num_ignore : int
        How many times an end of thinking is replaced by ``ignore_str`` (s1: 1; ablations 1, 2, 4, 6).
    ignore_str : str
        Appended verbatim when an end is ignored (s1: ``"Wait"``; ablations ``"Hmm"``, ``"Alternatively"``).
    end_think : str or None
        What ends thinking besides EOS (s1: ``"<|im_start|>"``); None: EOS only.
    answer_prefix : str
        Appended before the answer (s1: ``"Final Answer:"``).
    think_start, answer_start : str
        Forced before thinking / before ``answer_prefix`` (s1: ``"<|im_start|>think"``, ``"<|im_start|>answer\\n"``).
    max_answer : int
        Tokens allowed for the answer after the delimiter (0: stop at the delimiter).

    Examples
    --------
    >>> bf = BudgetForcing(max_think=24, num_ignore=1)
    >>> gen = bf.run(backend, "What is 2+3?", GenerationParams(max_new_tokens=40))   # doctest: +SKIP
    >>> [e.text for e in gen.tokens if e.intervention == "forced:Wait"]              # doctest: +SKIP
    ['Wait']
    """

    name = "budget_forcing"

    def __init__(self, max_think: int | None = None, num_ignore: int = 1, ignore_str: str = "Wait",
                 end_think: str | None = None, answer_prefix: str = "Final Answer:", *,
                 think_start: str = "", answer_start: str = "", max_answer: int = 16):
        self.max_think = None if max_think is None else check_int("max_think", max_think, 1)
        self.num_ignore = check_int("num_ignore", num_ignore, 0)
        self.ignore_str = check_str("ignore_str", ignore_str)
        self.end_think = check_str("end_think", end_think, allow_none=True)
        self.answer_prefix = check_str("answer_prefix", answer_prefix, allow_empty=True)
        self.think_start = check_str("think_start", think_start, allow_empty=True)
        self.answer_start = check_str("answer_start", answer_start, allow_empty=True)
        self.max_answer = check_int("max_answer", max_answer, 0)

    @classmethod
    def s1(cls, max_think: int | None = None, num_ignore: int = 1, ignore_str: str = "Wait",
           max_answer: int = 16) -> "BudgetForcing":
        """The s1 delimiters: ``<|im_start|>think`` … ``<|im_start|>`` … ``<|im_start|>answer\\nFinal Answer:``."""
        return cls(max_think, num_ignore, ignore_str, end_think="<|im_start|>", answer_prefix="Final Answer:",
                   think_start="<|im_start|>think", answer_start="<|im_start|>answer\n", max_answer=max_answer)

    def settings(self) -> dict[str, Any]:
        return {"max_think": self.max_think, "num_ignore": self.num_ignore, "ignore_str": self.ignore_str,
                "end_think": self.end_think, "answer_prefix": self.answer_prefix,
                "think_start": self.think_start, "answer_start": self.answer_start, "max_answer": self.max_answer}

    def _stops(self, dec: Decoder) -> tuple[set[int], tuple[str, ...]]:
        if self.end_think is None:
            return set(dec.stop_ids), ()
        ids = dec.tokenizer(self.end_think, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return set(dec.stop_ids) | {ids[0]}, ()
        return set(dec.stop_ids), (self.end_think,)

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        if self.think_start:
            dec.force(self.think_start, "forced:think_start")
            dec.note("think_start", text=self.think_start)
        start = len(dec.ids)
        budget = self.max_think if self.max_think is not None else max(1, dec.room - self.max_answer)
        ended_by, ignored = self._think(dec, start, budget)
        think_tokens = len(dec.ids) - start
        delimiter = answer_delimiter(dec.text, self.answer_start, self.answer_prefix)
        dec.note("answer_delimiter", text=delimiter, reason=ended_by)
        dec.force(delimiter, "forced:answer")
        answer_at, answer_text_at = len(dec.ids), len(dec.text)
        reason = dec.generate(self.max_answer) if self.max_answer else "stop"
        return ("stop" if reason == "stop" else "length"), {
            "think_tokens": think_tokens, "ignored": ignored, "thinking_ended_by": ended_by,
            "answer_position": answer_at, "answer": dec.text[answer_text_at:]}

    def _think(self, dec: Decoder, start: int, budget: int) -> tuple[str, int]:
        """Thinking rounds; returns what ended thinking (``"model"`` or ``"budget"``) and how many ends were ignored."""
        stop_ids, stop_strings = self._stops(dec)
        ignored = 0
        while True:
            left = budget - (len(dec.ids) - start)
            reason = dec.generate(left, stop_ids, stop_strings, min_tokens=1 if ignored else 0)
            if reason != "stop" or len(dec.ids) - start >= budget:
                return "budget", ignored
            if ignored >= self.num_ignore or dec.room <= 0:
                return "model", ignored
            dec.note("ignore_end", text=self.ignore_str, round=ignored + 1)
            dec.force(self.ignore_str, f"forced:{self.ignore_str}")
            ignored += 1
