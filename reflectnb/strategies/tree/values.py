"""Numbers for tree nodes: ToT's value map and votes, user verifiers and PRMs, ReST-MCTS* targets.

Contract
--------
* :func:`value_from_outputs` maps each evaluation output's last non-empty line
  to ToT's value map (``impossible`` 0.001, ``likely`` 1, ``sure`` 20; the last
  of these words on that line wins) and sums over the samples.
* :func:`votes_from_outputs` counts ToT-style votes (``best choice is 2``, else
  the last integer) for 1-based candidate numbers.
* :func:`call_value_fn` runs a user verifier ``(state) -> bool | float`` or
  process-reward function ``(question, partial) -> float``: ``bool`` becomes
  1.0/0.0; an exception, a non-number, NaN or ±inf becomes a :class:`ValueFailure`
  (the caller records it on the node, then continues or raises
  :class:`VerifierError`).
* :func:`prm_target` / :func:`prm_targets` are ReST-MCTS*'s process-reward
  targets ``v = max(0, v_parent + (1 − v_parent)·r / m)``.

Non-goals: generating text (see ``evaluate.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from reflectnb.errors import ReflectnbError

VALUE_MAP: dict[str, float] = {"impossible": 0.001, "likely": 1.0, "sure": 20.0}
_VOTE = re.compile(r"best choice is\D*(\d+)", re.I)


class VerifierError(ReflectnbError):
    """A user verifier or process-reward function failed and the search was asked to stop."""


@dataclass(frozen=True)
class ValueFailure:
    """Why a user value function gave no number (kept on ``Node.attributes['value_error']``)."""

    message: str


def value_label(output: str, value_map: Mapping[str, float] = VALUE_MAP) -> str | None:
    """The value word an evaluation output ends with, or ``None``.

    Examples
    --------
    >>> value_label("8 + 16 = 24\\nsure"), value_label("no idea")
    ('sure', None)
    """
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    names = "|".join(re.escape(n) for n in sorted(value_map, key=len, reverse=True))
    found = re.findall(rf"\b({names})\b", lines[-1].lower())
    return found[-1] if found else None


def value_from_outputs(outputs: Iterable[str], value_map: Mapping[str, float] = VALUE_MAP) -> float:
    """Sum of the mapped value words over evaluation samples (ToT ``value_outputs_unwrap``).

    Examples
    --------
    >>> value_from_outputs(["…sure", "…likely", "…impossible"])
    21.001
    """
    labels = [value_label(o, value_map) for o in outputs]
    return sum(value_map[label] for label in labels if label is not None)


def votes_from_outputs(outputs: Iterable[str], n_candidates: int) -> list[float]:
    """Vote counts per candidate (votes name candidates from 1; others are ignored).

    Examples
    --------
    >>> votes_from_outputs(["The best choice is 2", "best choice is 2.", "I pick 1"], 3)
    [1.0, 2.0, 0.0]
    """
    counts = [0.0] * n_candidates
    for output in outputs:
        match = _VOTE.findall(output) or re.findall(r"\d+", output)
        choice = int(match[-1]) - 1 if match else -1
        if 0 <= choice < n_candidates:
            counts[choice] += 1
    return counts


def as_number(got: Any) -> float | ValueFailure:
    """A verifier's answer as a float (``True`` → 1.0), or why it is not a finite number."""
    if isinstance(got, bool):
        return float(got)
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        try:
            number = float(got)
        except OverflowError:  # an int too large for a float
            number = math.inf if got > 0 else -math.inf
        if not math.isfinite(number):  # NaN or ±inf would poison sums, backups and the beam order
            shown = "NaN" if math.isnan(number) else f"{number:+}"
            return ValueFailure(f"returned {shown}, expected a bool or a finite number")
        return number
    try:
        import numpy as np  # numpy scalars (np.float64, np.bool_) are common verifier results

        if isinstance(got, (np.bool_, np.integer, np.floating)):
            return as_number(got.item())
    except ImportError:  # pragma: no cover - numpy ships with pandas
        pass
    return ValueFailure(f"returned {type(got).__name__} {got!r:.60}, expected a bool or a number")


def call_value_fn(fn: Callable[..., Any], *args: Any) -> float | ValueFailure:
    """Run a user value function; an exception becomes a :class:`ValueFailure`."""
    try:
        got = fn(*args)
    except Exception as exc:  # a user function may fail in any way; the search records it
        return ValueFailure(f"raised {type(exc).__name__}: {exc}")
    return as_number(got)


def prm_target(parent_value: float, r: int, m: int) -> float:
    """ReST-MCTS*'s process-reward target of a step: ``max(0, v + (1 − v)·r / m)``.

    ``r`` is +1 if the step can still reach a correct answer, −1 otherwise; ``m``
    is the number of steps from this one to a correct leaf (1 at the leaf).

    Examples
    --------
    >>> prm_target(0.5, -1, 2)
    0.25
    """
    if m <= 0:
        raise ValueError(f"`m` must be a positive number of steps, got {m!r}")
    return max(0.0, parent_value + (1.0 - parent_value) * r / m)


def prm_path_targets(rs: Sequence[int], ms: Sequence[int], start: float = 0.0) -> list[float]:
    """Targets along one path, each step starting from the previous target.

    Examples
    --------
    >>> [round(v, 4) for v in prm_path_targets([1, 1, 1], [3, 2, 1])]
    [0.3333, 0.6667, 1.0]
    """
    out, value = [], start
    for r, m in zip(rs, ms):
        value = prm_target(value, r, m)
        out.append(value)
    return out


def prm_targets(parents: Mapping[int, int | None], correct: Iterable[int]) -> dict[int, float]:
    """Targets for every non-root node of a tree, given which leaves are correct.

    ``parents`` maps node id → parent id (root: ``None``). A node with a correct
    leaf below (or being one) gets r = +1 and m = 1 + its distance to the
    nearest such leaf; any other node gets r = −1 and m = 1 + the height of its
    subtree (reflectnb's choice: the steps it would still take). The root is 0.
    """
    children: dict[int, list[int]] = {}
    for node, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(node)
    good = set(correct)

    def to_good(n: int) -> float:
        return 0 if n in good else 1 + min((to_good(c) for c in children.get(n, [])), default=math.inf)

    def height(n: int) -> int:
        return 1 + max((height(c) for c in children.get(n, [])), default=-1)

    targets: dict[int, float] = {}

    def walk(n: int, v: float) -> None:
        for c in children.get(n, []):
            dist = to_good(c)
            r, m = (1, int(dist) + 1) if dist < math.inf else (-1, height(c) + 1)
            targets[c] = prm_target(v, r, m)
            walk(c, targets[c])

    for root in (n for n, p in parents.items() if p is None):
        walk(root, 0.0)
    return targets
