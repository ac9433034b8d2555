"""SRGen: self-reflective generation at test time (Mu et al. 2025, arXiv 2510.02919; REFERENCE §2).

Contract (as in repo ``2020-qqtcg/SRGen`` @61be0b3, ``tnot_decorator.py``)
--------------------------------------------------------------------------
* At every decode step, before sampling, the entropy ``H_t`` of the next-token
  distribution at temperature T (T = 1 when greedy; raw model logits, natural
  log, ``1e-10`` inside the log) is compared with :func:`adaptive_threshold`
  over the last ``N`` entropies *before* appending ``H_t``; ``H_t`` is then
  appended (the triggering one too). The history lives for one run.
* On ``H_t > thr`` a vector ``δ ∈ R^{1×1×d}`` (zeros) is optimised for ``steps``
  AdamW steps (lr, weight decay 1e-8, eps 1e-5) on :func:`srgen_loss`:
  ``(1−λ)·CE_ctx + λ·H(last)``, with δ added to the *final* hidden state (after
  the final norm, before ``lm_head``) of every context position. The pending
  token is then sampled from ``lm_head(h_last + δ)``; δ is not kept.
* Corrections stop after ``max_retries``; then decoding goes on without checks.

Differences from the repo (same mathematics, cheaper): the repo ends the
``generate()`` call with a forced EOS, re-tokenizes prompt + partial text and
re-runs the whole context; here the KV cache and the final hidden states are
kept, since δ enters after the last layer and the states do not depend on it.
The repo's first-call "δ_normal" (optimised on the prompt but never applied:
the line that adds it is commented out) is omitted; it only costs ``steps``
extra backward passes per problem.

Non-goals: batches; very long contexts (CE_ctx materialises ``[context, vocab]``
logits once per optimisation step).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from reflectnb.controllers.base import Controller, check_float, check_int
from reflectnb.controllers.loop import Decoder
from reflectnb.backends.base import GenerationParams
from reflectnb.controllers.sampling import entropy, sampling_params


def adaptive_threshold(history: Sequence[float], N: int = 25, K: float = 4.0, min_std: float = 0.5,
                       min_thr: float = 1.8, init_thr: float = 3.0) -> float:
    """``max(mean(W) + K·max(std(W), min_std), min_thr)`` over the last N entries, or ``init_thr`` before N exist.

    ``std`` is the unbiased standard deviation (``torch.std``).

    Examples
    --------
    >>> adaptive_threshold([1.0] * 25)
    3.0
    >>> round(adaptive_threshold([0.1] * 25), 6)
    2.1
    """
    if len(history) < N:
        return float(init_thr)
    window = torch.tensor(list(history)[-N:], dtype=torch.float64)
    return max(float(window.mean()) + K * max(float(window.std()), min_std), float(min_thr))


def _project(head: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``head(x)`` in float32 without gradients reaching the model's weights."""
    weight = head.weight.detach().float()
    bias = None if getattr(head, "bias", None) is None else head.bias.detach().float()
    return F.linear(x.float(), weight, bias)


def srgen_loss(head: torch.nn.Module, hidden: torch.Tensor, ids: Sequence[int] | torch.Tensor,
               delta: torch.Tensor, lam: float, temperature: float) -> torch.Tensor:
    """``(1−λ)·CE_ctx + λ·H(last)`` with ``delta [1, 1, d]`` added to ``hidden [L, d]``.

    ``CE_ctx`` is the mean next-token cross-entropy of positions ``0..L-2``
    predicting ``ids[1:]``; ``H`` is :func:`entropy` of the last position at ``temperature``.
    """
    logits = _project(head, hidden[None] + delta)[0]  # [L, vocab]
    targets = torch.as_tensor(ids, device=logits.device)[1:]
    ce = F.cross_entropy(logits[:-1], targets) if len(targets) else logits.new_zeros(())
    return (1 - lam) * ce + lam * entropy(logits[-1], temperature)


def correct_hidden(head: torch.nn.Module, hidden: torch.Tensor, ids: Sequence[int] | torch.Tensor, *,
                   lam: float, lr: float, steps: int, temperature: float):
    """Optimise δ (zeros, ``[1, 1, d]``) with AdamW; return ``(δ, corrected last logits [vocab], losses)``.

    Examples
    --------
    >>> head = torch.nn.Linear(8, 5, bias=False)
    >>> delta, logits, losses = correct_hidden(head, torch.randn(3, 8), [0, 1, 2], lam=0.05, lr=0.01,
    ...                                        steps=3, temperature=1.0)
    >>> tuple(delta.shape), len(losses)
    ((1, 1, 8), 3)
    """
    delta = torch.zeros(1, 1, hidden.shape[-1], device=hidden.device, requires_grad=True)
    optimizer = torch.optim.AdamW([delta], lr=lr, weight_decay=1e-8, eps=1e-5)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            loss = srgen_loss(head, hidden, ids, delta, lam, temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    with torch.no_grad():
        logits = _project(head, hidden[-1] + delta[0, 0])
    return delta.detach(), logits, losses


class SRGen(Controller):
    """Entropy-triggered correction of the final hidden state (defaults: the repo's AIME script).

    Parameters
    ----------
    N, K, min_std, min_thr, init_thr : window, spread multiplier, σ floor, τ floor, τ before N entropies exist.
    lam : weight λ of the entropy term.  lr, steps : AdamW learning rate and steps per correction.
    max_retries : corrections allowed per run.
    temperature : sampling temperature of the run (0 = greedy, entropies then at T = 1);
        it replaces ``params.temperature``.

    Examples
    --------
    >>> gen = SRGen(temperature=0).run(backend, "Solve 3x = 12.", GenerationParams(max_new_tokens=40))  # doctest: +SKIP
    >>> [(i["position"], round(i["entropy"], 2)) for i in gen.params["interventions"]]                # doctest: +SKIP
    """

    name = "srgen"
    keep_hidden = True

    def __init__(self, N: int = 25, K: float = 4.0, min_std: float = 0.5, min_thr: float = 1.8,
                 init_thr: float = 3.0, lam: float = 0.05, lr: float = 0.01, steps: int = 3,
                 max_retries: int = 20, temperature: float = 0.6):
        self.N = check_int("N", N, 2)
        self.K = check_float("K", K, 0.0)
        self.min_std = check_float("min_std", min_std, 0.0)
        self.min_thr = check_float("min_thr", min_thr, 0.0)
        self.init_thr = check_float("init_thr", init_thr, 0.0)
        self.lam = check_float("lam", lam, 0.0, 1.0)
        self.lr = check_float("lr", lr, 0.0)
        self.steps = check_int("steps", steps, 0)
        self.max_retries = check_int("max_retries", max_retries, 0)
        self.temperature = check_float("temperature", temperature, 0.0)

    def settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("N", "K", "min_std", "min_thr", "init_thr", "lam", "lr", "steps",
                                              "max_retries", "temperature")}

    def sampling(self, params: GenerationParams | None) -> GenerationParams:
        return sampling_params(params, temperature=self.temperature)

    def threshold(self, history: Sequence[float]) -> float:
        return adaptive_threshold(history, self.N, self.K, self.min_std, self.min_thr, self.init_thr)

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        history: list[float] = []
        corrections = 0
        t_entropy = self.temperature or 1.0
        while dec.room > 0:
            logits, label = None, None
            if corrections < self.max_retries:
                h_t = float(entropy(dec.logits, t_entropy))
                thr = self.threshold(history)
                history.append(h_t)
                if h_t > thr:
                    logits, label = self._correct(dec, h_t, thr, t_entropy), "srgen:corrected"
                    corrections += 1
            choice = dec.choose(logits)
            if label:
                dec.interventions[-1]["token_id"] = choice.token_id
            if choice.token_id in dec.stop_ids:
                return "stop", {"corrections": corrections, "entropies": history}
            dec.accept(choice, label)
        return "length", {"corrections": corrections, "entropies": history}

    def _correct(self, dec: Decoder, h_t: float, thr: float, t_entropy: float) -> torch.Tensor:
        delta, logits, losses = correct_hidden(dec.head, dec.hidden_states(), dec.all_ids, lam=self.lam,
                                               lr=self.lr, steps=self.steps, temperature=t_entropy)
        dec.note("srgen", entropy=h_t, threshold=thr, entropy_after=float(entropy(logits, t_entropy)),
                 argmax_before=int(dec.logits.argmax()), argmax_after=int(logits.argmax()),
                 delta_norm=float(delta.norm()), losses=losses)
        return logits
