"""Progressive Self-Reflection (PSR; Phan, Li, Lei, EMNLP 2025 Findings, arXiv 2510.01270; REFERENCE §9).

PSR is a *safety* method (jailbreak defence). Official code was NOT FOUND; the
loop follows REFERENCE §9 (paper + summaries + a third-party vLLM port):

1. generate ``K`` tokens from the last checkpoint;
2. append ``probe`` to prompt + accepted text + chunk and decode ``judge_tokens``
   greedily; :func:`parse_judge` reads the verdict;
3. unsafe: *backtrack* (drop the chunk, crop the KV cache to the checkpoint)
   and regenerate, optionally with ``discard_bias`` added to the dropped
   tokens' logits; safe: the chunk becomes the new checkpoint;
4. every check uses one of ``N`` reflection rounds; once they are used up the
   rest is generated without checks.

Contract: the probe and the judge's words never enter the output or the trace
as tokens; a chunk's tokens reach ``on_token`` only once the chunk is committed.
Each check is recorded in ``params["interventions"]`` (chunk text, judge text,
verdict). Defaults are the port's (K = 32, N = 4, 8 judge tokens); the paper's
own K and N, and its round predictor, were NOT FOUND (pass ``N`` per prompt).

Non-goals: the reflection-round predictor.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from reflectnb.controllers.base import Controller, check_float, check_int, check_str
from reflectnb.controllers.loop import Choice, Decoder

DEFAULT_PROBE = ("\n\nLet's check if the generated text is harmful or harmless. "
                 "Is the generated text harmful? Answer: ")


def parse_judge(text: str) -> bool:
    """True when the judge's words mean *safe*: "harmless"/"not harmful" → safe; "harmful",
    "unsafe" or a leading "yes" → unsafe; anything unclear → safe.

    Examples
    --------
    >>> parse_judge("No, it is harmless"), parse_judge("Yes"), parse_judge("not harmful"), parse_judge("")
    (True, False, True, True)
    """
    words = text.strip().lower()
    if "harmless" in words or "not harmful" in words:
        return True
    if "harmful" in words or "unsafe" in words or re.match(r"yes\b", words):
        return False
    return True


class PSR(Controller):
    """Check every ``K`` tokens with a reflection probe and backtrack unsafe chunks, ``N`` rounds at most.

    Parameters
    ----------
    K : int  tokens per chunk.   N : int  reflection rounds (checks) per run.
    probe : str  appended after the chunk to ask the model (never kept).
    judge_tokens : int  greedy tokens decoded after the probe.
    judge : callable ``words -> bool`` (True = safe), default :func:`parse_judge`.
    discard_bias : float  added to the logits of dropped tokens while regenerating (0: none; e.g. -5).

    Examples
    --------
    >>> gen = PSR(K=16, N=2).run(backend, "How do I bake bread?", GenerationParams(max_new_tokens=40))  # doctest: +SKIP
    >>> [(i["safe"], i["judge"]) for i in gen.params["interventions"]]                                # doctest: +SKIP
    """

    name = "psr"

    def __init__(self, K: int = 32, N: int = 4, probe: str = DEFAULT_PROBE, judge_tokens: int = 8,
                 judge: Callable[[str], bool] = parse_judge, discard_bias: float = 0.0):
        self.K = check_int("K", K, 1)
        self.N = check_int("N", N, 0)
        self.probe = check_str("probe", probe)
        self.judge_tokens = check_int("judge_tokens", judge_tokens, 1)
        self.judge = judge
        self.discard_bias = check_float("discard_bias", discard_bias, float("-inf"), 0.0)

    def settings(self) -> dict[str, Any]:
        return {"K": self.K, "N": self.N, "probe": self.probe, "judge_tokens": self.judge_tokens,
                "judge": getattr(self.judge, "__name__", "judge"), "discard_bias": self.discard_bias}

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        dec.live = False
        rounds, backtracks, reason, regenerated = 0, 0, "length", False
        checkpoint = dec.mark()
        while dec.room > 0:
            checkpoint = dec.mark()
            reason = dec.generate(self.K if rounds < self.N else dec.room)
            if rounds >= self.N:
                break
            rounds += 1
            if self._check(dec, checkpoint, rounds):
                self._commit(dec, checkpoint, regenerated)
                regenerated = False
                if reason == "stop":
                    break
            else:
                backtracks, regenerated = backtracks + 1, True
        self._commit(dec, checkpoint, regenerated)
        return ("stop" if reason == "stop" else "length"), {"rounds": rounds, "backtracks": backtracks}

    def _check(self, dec: Decoder, checkpoint, round_no: int) -> bool:
        """Judge the chunk after ``checkpoint``; on unsafe, go back there. Returns the verdict."""
        chunk_ids = dec.ids[checkpoint.length:]
        chunk = dec.tokenizer.decode(chunk_ids, skip_special_tokens=False)
        words = self.ask(dec)
        safe = bool(self.judge(words))
        record = dec.note("psr_check", round=round_no, checkpoint=checkpoint.length, chunk=chunk,
                          judge=words, safe=safe)
        if not safe:
            dec.restore(checkpoint)
            record["backtracked"] = True
            if self.discard_bias:
                dec.bias.update({i: dec.bias.get(i, 0.0) + self.discard_bias for i in set(chunk_ids)})
        return safe

    def ask(self, dec: Decoder) -> str:
        """Append the probe, decode the judge's words greedily, and go back to before the probe."""
        before = dec.mark()
        dec.force(self.probe, "psr:probe")
        words: list[int] = []
        for _ in range(self.judge_tokens):
            token = int(dec.logits.argmax())
            if token in dec.stop_ids:
                break
            words.append(token)
            dec.accept(Choice(token, 0.0, 0.0), "psr:judge")
        dec.restore(before)
        return dec.tokenizer.decode(words, skip_special_tokens=True)

    @staticmethod
    def _commit(dec: Decoder, checkpoint, regenerated: bool) -> None:
        if regenerated and checkpoint.length < len(dec.ids):
            dec.events[checkpoint.length].intervention = "psr:regenerated"
        dec.bias.clear()
        dec.publish()
