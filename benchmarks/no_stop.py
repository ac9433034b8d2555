"""A logits processor for benchmarks that must compare equal work: no row may stop before its token cap."""

from __future__ import annotations


class NoStop:
    """The stop ids never win, so every row writes ``max_new_tokens`` tokens."""

    def __init__(self, ids: set[int]):
        self.ids = sorted(ids)

    def __call__(self, input_ids, scores):
        scores = scores.clone()  # not in place: the scores may be an inference tensor
        scores[:, self.ids] = float("-inf")
        return scores
