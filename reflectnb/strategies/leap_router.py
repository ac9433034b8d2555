"""Who reads whose summary in LeaP: normalized Levenshtein distance and the four routers.

Every path's summary goes to ``k`` peers chosen by a router (Luo et al.,
"Learning from Peers in Reasoning Models", arXiv 2505.07787; reference code
``tongxuluo/LeaP``, ``leap/utils/util.py``):

``dispersed``  the ``k`` summaries *least* similar to the path's own (different ideas)
``clustered``  the ``k`` *most* similar (confirmation from like-minded peers)
``hybrid``     ``k // 2`` least similar, then the rest most similar (the reference's split;
               with ``k = 1`` that is one most similar peer)
``random``     ``k`` peers drawn with a seeded :class:`random.Random`

Similarity is the normalized Levenshtein distance
``levenshtein(a, b) / max(len(a), len(b))`` (0 = same text, 1 = nothing shared).
The reference sorts by ``Levenshtein.ratio``, an insert/delete similarity; the
order it gives is close but not identical. Ties keep path order (a stable sort),
so routing is deterministic. ``k = -1``, or any ``k`` at or above the number of
other paths, gives every other path. Unlike the reference, a hybrid pick never
names the same peer twice.

Non-goals: embedding similarity, routing across questions.
"""

from __future__ import annotations

import random
from typing import Sequence

from reflectnb.errors import OptionError

ROUTERS = ("dispersed", "clustered", "hybrid", "random")


def levenshtein(a: str, b: str) -> int:
    """The edit distance (insertions, deletions, substitutions) between ``a`` and ``b``.

    Examples
    --------
    >>> levenshtein("kitten", "sitting"), levenshtein("", "abc"), levenshtein("same", "same")
    (3, 3, 0)
    """
    while a and b and a[0] == b[0]:  # a shared prefix and suffix cost nothing; summaries often share both
        a, b = a[1:], b[1:]
    while a and b and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def distance(a: str, b: str) -> float:
    """Normalized Levenshtein distance in [0, 1] (two empty texts are at 0).

    Examples
    --------
    >>> distance("abcd", "abcf"), distance("", "")
    (0.25, 0.0)
    """
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0


def distance_matrix(texts: Sequence[str]) -> list[list[float]]:
    """All pairwise distances (symmetric; each pair computed once)."""
    n = len(texts)
    matrix = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i][j] = matrix[j][i] = distance(texts[i], texts[j])
    return matrix


def route(router: str, me: int, distances: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """The peers (indices) whose summaries path ``me`` receives, in the order it reads them.

    ``distances[j]`` is the distance from path ``me`` to path ``j``; ``k = -1``
    means every other path.

    Examples
    --------
    >>> rng = random.Random(0)
    >>> d = [0.0, 0.9, 0.2, 0.5]
    >>> route("dispersed", 0, d, 2, rng), route("clustered", 0, d, 2, rng), route("hybrid", 0, d, 2, rng)
    ([1, 3], [2, 3], [1, 2])
    """
    others = [j for j in range(len(distances)) if j != me]
    if k < 0 or k >= len(others):
        return others
    if router == "random":
        return rng.sample(others, k)
    far_first = sorted(others, key=lambda j: -distances[j])  # stable: ties keep path order
    near_first = sorted(others, key=lambda j: distances[j])
    if router == "dispersed":
        return far_first[:k]
    if router == "clustered":
        return near_first[:k]
    if router != "hybrid":
        raise OptionError(f"`router` must be one of {list(ROUTERS)}, got {router!r}")
    picked = far_first[: k // 2]
    return picked + [j for j in near_first if j not in picked][: k - len(picked)]
