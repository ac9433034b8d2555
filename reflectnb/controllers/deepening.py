"""Iterative-deepening sampling (ID-Sampling; Chen, Koenig, Dilkina 2025, arXiv 2502.05449; REFERENCE §6).

**Reconstructed.** No reference code exists. Sourced (paper abstract): trigger
sentences are inserted at increasing intervals whose budget grows geometrically
with factor γ, and self-reflection happens at each expansion. Reconstructed
here (REFERENCE §6's proposal): boundaries ``B0, γ·B0, γ²·B0, …, B_max``
(:func:`id_boundaries`); the model generates until it ends or reaches the next
boundary; at a boundary where it has not ended the trigger text is appended
and generation continues to the following boundary. With ``policy="always"``
a natural end before ``B_max`` is also replaced by the trigger. The trigger
text and the B0 / γ defaults were NOT FOUND, so ``B0``, ``gamma`` and ``B_max``
have no defaults.

Contract
--------
* Boundaries count *model-sampled* tokens; forced trigger tokens come on top,
  so the total is at most ``B_max + #triggers·|trigger|`` and
  ``#triggers ≤ len(boundaries) − 1 = ⌈log_γ(B_max/B0)⌉``.
* The trigger is appended verbatim (add your own leading space or newline).

Non-goals: the Best-of-N / majority-vote wrappers of the paper (run this
controller several times and vote with ``reflectnb.evaluate``).
"""

from __future__ import annotations

from typing import Any

from reflectnb.controllers.base import Controller, check_float, check_int, check_str
from reflectnb.controllers.loop import Decoder
from reflectnb.errors import OptionError

POLICIES = ("unfinished", "always")


def id_boundaries(B0: int, gamma: float, B_max: int) -> list[int]:
    """Token budgets ``B0·γ^i`` (rounded down) below ``B_max``, then ``B_max``.

    Examples
    --------
    >>> id_boundaries(512, 2, 4096)
    [512, 1024, 2048, 4096]
    >>> id_boundaries(100, 1.5, 300)
    [100, 150, 225, 300]
    """
    bounds, i = [], 0
    while int(B0 * gamma**i) < B_max:
        bounds.append(int(B0 * gamma**i))
        i += 1
    return bounds + [B_max]


class IDSampling(Controller):
    """Append a trigger at geometrically growing budgets (reconstructed; see the module docstring).

    Parameters
    ----------
    B0 : int  first budget (model tokens).   gamma : float > 1  growth factor.
    B_max : int  last budget (>= B0).   trigger : str  text appended at a boundary (verbatim).
    policy : ``"unfinished"`` (trigger only when the model has not ended at a boundary)
        or ``"always"`` (an early natural end is also replaced by the trigger).

    Examples
    --------
    >>> ids = IDSampling(B0=8, gamma=2, B_max=32, trigger=" Wait, let me double-check.")
    >>> gen = ids.run(backend, "What is 17 * 3?", GenerationParams(max_new_tokens=80))   # doctest: +SKIP
    >>> [i["boundary"] for i in gen.params["interventions"]]                            # doctest: +SKIP
    [8, 16]
    """

    name = "id_sampling"

    def __init__(self, B0: int, gamma: float, B_max: int, trigger: str = "Wait", policy: str = "unfinished"):
        self.B0 = check_int("B0", B0, 1)
        self.gamma = check_float("gamma", gamma, 1.0)
        if self.gamma <= 1.0:
            raise OptionError(f"`gamma` must be > 1 (the budget has to grow), got {gamma!r}")
        self.B_max = check_int("B_max", B_max, B0)
        self.trigger = check_str("trigger", trigger)
        if policy not in POLICIES:
            raise OptionError(f"`policy` must be one of {POLICIES}, got {policy!r}")
        self.policy = policy

    def settings(self) -> dict[str, Any]:
        return {"B0": self.B0, "gamma": self.gamma, "B_max": self.B_max, "trigger": self.trigger,
                "policy": self.policy}

    @property
    def boundaries(self) -> list[int]:
        return id_boundaries(self.B0, self.gamma, self.B_max)

    def control(self, dec: Decoder) -> tuple[str, dict[str, Any]]:
        sampled, reason = 0, "length"
        bounds = self.boundaries
        for i, bound in enumerate(bounds):
            before = len(dec.ids)
            reason = dec.generate(bound - sampled)
            sampled += len(dec.ids) - before
            if i == len(bounds) - 1 or dec.room <= 0 or not self._triggers(reason, sampled, bound):
                break
            dec.note("trigger", boundary=bound, sampled=sampled, text=self.trigger,
                     ended=reason == "stop")
            dec.force(self.trigger, "forced:trigger")
        return ("stop" if reason == "stop" else "length"), {"sampled_tokens": sampled, "boundaries": bounds}

    def _triggers(self, reason: str, sampled: int, bound: int) -> bool:
        if reason != "stop":
            return sampled >= bound  # unfinished at the boundary
        return self.policy == "always"
