"""The sampling loop around :class:`~reflectnb.backends.engine.FastLlama`, shaped like ``model.generate``.

Contract (what ``LocalBackend`` relies on, the same as its transformers path)
---------------------------------------------------------------------------
* Each step calls the logits processors with ``(input_ids, scores)``: ``input_ids``
  holds the real left-padded prompt plus every token chosen so far (a view of
  one pre-allocated buffer), ``scores`` the fp32 logits ``[batch, vocab]``. Then,
  when sampling, transformers' own Temperature / TopK / TopP warpers in
  ``generate``'s order, ``softmax`` and ``torch.multinomial`` on the global RNG
  (so ``torch.manual_seed`` works as it does for ``generate``); greedy is ``argmax``.
* Finished rows get the pad token, exactly as ``generate`` does, so the
  streamer (``token_capture.TokenStreamer``) sees the same sequence of calls:
  the prompt first, then one ``[batch]`` tensor per step.
* A row finishes on an end-of-sequence id, when ``stopped(row)`` says so (stop
  strings, the repetition stop), or at ``max_new_tokens``.
* Prefix reuse: the last batch-1 cache is kept; a new prompt that starts with
  ids already in it feeds only the rest. A batch's rows are kept too (also
  those that left it early): each row of the next batch starts from the kept
  row sharing most of its prompt, when that feeds fewer tokens than
  prefilling the batch's shared prefix once (``_prefill_rows``), and a single
  prompt starts from a kept row when it holds more of it than the batch-1
  cache (``_reusable``). ``stats`` counts what was reused.

Non-goals: beams, hidden-state edits, speculative decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from reflectnb.backends.engine import FastLlama, KVCache

MIN_CAPACITY = 2048  # batch-1 caches get room to grow, so the next round can reuse them


@dataclass
class PrefixStats:
    """Prompt tokens fed vs reused from the previous call's cache (batch 1), and by batches from kept rows."""

    calls: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    last_reused: int = 0
    row_reused_tokens: int = 0  # batches: prompt tokens taken from rows kept from earlier batches


def warpers(temperature: float, top_k: int | None, top_p: float) -> list:
    """transformers' sampling warpers, in ``generate``'s order (temperature, top-k, top-p)."""
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    out = []
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k:
        out.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return out


MIN_SHARED = 16  # prompt tokens all rows of a batch share, from which they are prefilled once (``_prefill_shared``)
MAX_KEPT_BYTES = 256 << 20  # a batch's caches are kept for the next one's row reuse only up to this size


class FastGenerator:
    """Runs batched generations on one :class:`FastLlama`; see the module docstring."""

    def __init__(self, engine: FastLlama, pad_id: int, stop_ids: set[int], reuse_prefix: bool = True):
        self.engine = engine
        self.pad_id = int(pad_id)
        self.stop_ids = torch.tensor(sorted(stop_ids), dtype=torch.long)
        self.reuse_prefix = reuse_prefix
        self.stats = PrefixStats()
        self._cache: KVCache | None = None
        self._rows: list[tuple[KVCache, int]] = []  # the last batch's rows: (cache, row), see _prefill_rows

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 processors: Sequence[Callable], sample_warpers: Sequence[Callable] | None,
                 put: Callable[[torch.Tensor], None], stopped: Callable[[int], bool]) -> None:
        """Generate up to ``max_new_tokens`` per row; ``sample_warpers=None`` means greedy."""
        try:
            self._generate(input_ids, attention_mask, max_new_tokens, processors, sample_warpers, put, stopped)
        except BaseException:
            self.forget()  # Ctrl-C may land mid-step: never reuse a half-written cache
            raise

    def _generate(self, input_ids, attention_mask, max_new_tokens, processors, sample_warpers, put,
                  stopped) -> None:
        b, t = input_ids.shape
        buffer = torch.full((b, t + max_new_tokens), self.pad_id, dtype=torch.long)
        buffer[:, :t] = input_ids
        threads = torch.get_num_threads()
        decoder = self.engine.decoder
        with torch_threads(decoder.preferred(threads) if decoder is not None else threads):
            cache, logits = self._prefill(input_ids, attention_mask, max_new_tokens)
        put(input_ids)
        with torch_threads(1):
            kept = self._decode(buffer, t, cache, logits, max_new_tokens, processors, sample_warpers, put, stopped,
                                threads)
        if b > 1 and self.reuse_prefix:  # kept until the next batch, within a memory bound
            self._rows = kept if _nbytes(kept) <= MAX_KEPT_BYTES else []

    def _decode(self, buffer, t, cache, logits, max_new_tokens, processors, sample_warpers, put, stopped,
                threads: int) -> list[tuple[KVCache, int]]:
        """Decode into ``buffer``; returns every row's last cache as ``(cache, row)`` (rows that left the batch
        early keep the cache they left)."""
        unfinished = torch.ones(buffer.shape[0], dtype=torch.bool)
        held = torch.arange(buffer.shape[0])  # the rows the cache holds (finished ones leave it, see _shrink)
        last: dict[int, tuple[KVCache, int]] = {}  # a row that left the batch: the cache it left
        for i in range(max_new_tokens):
            ids = buffer[:, : t + i]
            scores = logits
            for processor in processors:
                scores = processor(ids, scores)
            token = self._choose(ids, scores, sample_warpers)
            token = torch.where(unfinished, token, self.pad_id)
            buffer[:, t + i] = token
            put(token)
            unfinished &= ~torch.isin(token, self.stop_ids)
            for row in unfinished.nonzero().flatten().tolist():
                if stopped(row):
                    unfinished[row] = False
            if not bool(unfinished.any()) or i + 1 == max_new_tokens:
                break
            before, rows_before = cache, held
            cache, held = _shrink(cache, held, unfinished)
            if cache is not before:
                going = set(held.tolist())
                last.update((row, (before, j)) for j, row in enumerate(rows_before.tolist()) if row not in going)
            logits = self.engine.step(cache, token[held], threads=threads)
            if len(held) < buffer.shape[0]:  # finished rows get zero scores (their tokens are replaced by padding)
                logits = logits.new_zeros(buffer.shape[0], logits.shape[1]).index_copy_(0, held, logits)
        last.update((row, (cache, j)) for j, row in enumerate(held.tolist()))
        return [last[row] for row in sorted(last)]

    @staticmethod
    def _choose(ids, scores, sample_warpers) -> torch.Tensor:
        if sample_warpers is None:
            return torch.argmax(scores, dim=-1)
        for warper in sample_warpers:
            scores = warper(ids, scores)
        probs = torch.softmax(scores, dim=-1)
        return torch.multinomial(probs, num_samples=1).squeeze(1)

    # -- prefill and prefix reuse ------------------------------------------------------------
    def _prefill(self, input_ids: torch.Tensor, mask: torch.Tensor, max_new: int):
        b, t = input_ids.shape
        need = t + max_new
        if b > 1:
            rows = [ids[m.bool()].tolist() for ids, m in zip(input_ids, mask)]
            from_rows = self._prefill_rows(rows, max_new) if self.reuse_prefix else None
            if from_rows is not None:
                return from_rows
            shared = self._prefill_shared(rows, max_new)
            if shared is not None:
                return shared
        if b != 1 or not self.reuse_prefix:
            self._cache = None
            cache = self.engine.new_cache(b, need)
            return cache, self.engine.prefill(cache, input_ids, mask)
        prompt = input_ids[0].tolist()
        cache, reused = self._reusable(prompt, need)
        self._count(t, reused)
        logits = self.engine.prefill(cache, input_ids[:, reused:], mask[:, reused:])
        self._cache = cache
        return cache, logits

    def _prefill_shared(self, rows: list[list[int]], max_new: int):
        """Prefill the prompt tokens all rows share once, then only each row's own tail; ``None`` if too few shared.

        Why: a batch's prompts often begin alike (the system prompt and a
        method's instructions in an evaluation, identical prompts in a debate's
        first round, self-consistency samples or a tree node's children), and
        prefill, not decoding, is most of such a batch's time. The shared part
        goes through the batch-1 path (so it also reuses the previous call's
        prefix), its cache rows are copied to every row, and the tails follow,
        left-padded among themselves: the padding sits between the shared part
        and a row's tail, masked like any padding, positions counted per row.
        """
        shared = _shared_length(rows)
        if shared < MIN_SHARED and shared < min(len(r) for r in rows) - 1:
            return None
        width = max(len(r) for r in rows) - shared
        prefix = torch.tensor([rows[0][:shared]])
        cache, _ = self._prefill(prefix, torch.ones_like(prefix), width + max_new)
        cache = cache.take_rows(torch.zeros(len(rows), dtype=torch.long), shared + width + max_new)
        return cache, self.engine.prefill(cache, *self._tails(rows, [shared] * len(rows), width))

    def _prefill_rows(self, rows: list[list[int]], max_new: int):
        """Start each row from the kept row (of the last batch, or the batch-1 cache) sharing most of its prompt,
        then prefill only the tails; ``None`` when prefilling the batch's shared prefix once feeds fewer tokens.

        Why: in a loop run over a batch (an evaluation's items, a tree's nodes,
        a debate's agents) each row's next prompt usually extends its own last
        conversation, which the batch-1 reuse cannot see. The kept keys and
        values are copied, compacted, into the columns just before the tails
        (positions count a row's real tokens, so compacting changes nothing);
        shorter reused parts get padding in front, masked like any padding.
        """
        pool = list(self._rows)
        if self._cache is not None:
            pool.append((self._cache, 0))
        if not pool:
            return None
        kept = [_kept_tokens(cache, j) for cache, j in pool]
        picks = []
        for row in rows:
            lengths = [min(_common_prefix(ids, row), len(row) - 1) for ids, _ in kept]
            best = max(range(len(kept)), key=lengths.__getitem__)
            picks.append((best, lengths[best]))
        b, reused = len(rows), max(n for _, n in picks)
        width = max(len(row) - n for row, (_, n) in zip(rows, picks))
        shared = _shared_length(rows)
        held = max(_common_prefix(ids, rows[0]) for ids, _ in kept)  # what the shared path's batch-1 prefill reuses
        if reused == 0 or b * width >= max(shared - held, 0) + b * (max(len(r) for r in rows) - shared):
            return None  # the shared prefix once (or a plain prefill) feeds no more tokens
        if reused + width + max_new > self.engine.max_positions:
            return None  # rows reusing little sit behind the longest reused part: too wide for the model
        cache = self.engine.new_cache(b, reused + width + max_new)
        for i, (row, (best, n)) in enumerate(zip(rows, picks)):
            cache.k[:, i, :, :reused - n] = 0  # masked, but never garbage: 0 x NaN would still be NaN in prefill
            cache.v[:, i, :, :reused - n] = 0
            _copy_kept(cache, i, reused - n, *pool[best], kept[best][1][:n])
            cache.ids[i] = [self.pad_id] * (reused - n) + row[:n]
        cache.length, cache.all_valid = reused, all(n == reused for _, n in picks)
        self.stats.row_reused_tokens += sum(n for _, n in picks)
        return cache, self.engine.prefill(cache, *self._tails(rows, [n for _, n in picks], width))

    def _tails(self, rows: list[list[int]], starts: list[int], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``rows[i][starts[i]:]`` left-padded to ``width`` columns, and their mask (1 = real token)."""
        tails = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, (row, start) in enumerate(zip(rows, starts)):
            tails[i, width - len(row) + start:] = torch.tensor(row[start:])
            mask[i, width - len(row) + start:] = 1
        return tails, mask

    def _reusable(self, prompt: list[int], need: int) -> tuple[KVCache, int]:
        """A batch-1 cache holding the longest reusable prefix of ``prompt`` (kept as it is, or copied from a row
        kept from the last batch), and its length.

        Why the kept rows: a single call after a batch often continues one of
        its rows (a debate's next round shares every agent's prompt, which
        extends one agent's conversation; a judge reads one candidate).
        """
        old = self._cache
        shared = _common_prefix(old.ids[0], prompt) if old is not None else 0
        capacity = max(need, MIN_CAPACITY)
        best = None
        for source, j in self._rows:  # the batch-1 cache wins ties: it needs no copy
            ids, columns = _kept_tokens(source, j)
            n = _common_prefix(ids, prompt)
            if n > shared:
                best, shared = (source, j, columns[:n]), n
        if best is not None:  # the kept row's real columns, compacted into a new batch-1 cache
            old = self.engine.new_cache(1, capacity)
            _copy_kept(old, 0, 0, *best)
            old.ids[0], old.length = prompt[:shared], shared
        shared = min(shared, len(prompt) - 1)  # feed at least one id: its logits start the loop
        if shared <= 0:
            return self.engine.new_cache(1, capacity), 0
        if old.capacity >= need:
            old.truncate(shared)
            return old, shared
        old.truncate(shared)
        return old.take_rows(torch.zeros(1, dtype=torch.long), capacity), shared  # a copy with room to grow

    def _count(self, prompt_tokens: int, reused: int) -> None:
        s = self.stats
        s.calls += 1
        s.prompt_tokens += prompt_tokens
        s.reused_tokens += reused
        s.last_reused = reused

    def forget(self) -> None:
        """Drop the kept caches (the next call recomputes its whole prompt)."""
        self._cache = None
        self._rows = []


def _shrink(cache: KVCache, held: torch.Tensor, unfinished: torch.Tensor) -> tuple[KVCache, torch.Tensor]:
    """Drop finished rows from the cache once at most half of the rows it holds are still going.

    Why: a batch runs until its longest row stops, and a step's cost grows with
    its rows (a batch of 8 costs ~2.5 steps of 1 here); copying the cache costs
    about a step, so it is done only when the rows halve (at most log2(batch) times).
    """
    going = unfinished[held]
    if int(going.sum()) * 2 > len(held):
        return cache, held
    return cache.take_rows(going.nonzero().flatten()), held[going]


@contextmanager
def torch_threads(n: int):
    """Run torch's ops on ``n`` threads inside the block (restored after, also on Ctrl-C).

    Why: between decode steps torch only touches ``[batch, vocab]`` tensors (the
    processors, the token capture's log-softmax and entropy, sampling), ~0.3 ms
    a step on one thread; with two threads on a busy machine each op waits on a
    descheduled peer (24 ms a step here, docs/engine.md). So the steps run with
    ``n = 1`` and get the thread count from before (``threads=``) for the C step;
    prefill takes what the C step last measured best (``Decoder.preferred``).
    """
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _shared_length(rows: list[list[int]]) -> int:
    """Prompt tokens all ``rows`` begin with, leaving every row at least one of its own (its logits start the loop)."""
    shared = min(_common_prefix(rows[0], r) for r in rows[1:])
    return min(shared, min(len(r) for r in rows) - 1)


def _nbytes(kept: list[tuple[KVCache, int]]) -> int:
    """Bytes of keys and values held by the distinct caches in ``kept``."""
    caches = {id(cache): cache for cache, _ in kept}.values()
    return sum(cache.k.nbytes + cache.v.nbytes for cache in caches)


def _copy_kept(cache: KVCache, i: int, at: int, source: KVCache, j: int, columns: torch.Tensor) -> None:
    """Copy ``source`` row ``j``'s cache ``columns`` (its first real tokens) into row ``i`` of ``cache`` from column
    ``at`` on, compacted (positions count a row's real tokens, so compacting changes nothing); ids are the
    caller's."""
    n = len(columns)
    cache.k[:, i, :, at:at + n] = source.k[:, j].index_select(2, columns)
    cache.v[:, i, :, at:at + n] = source.v[:, j].index_select(2, columns)
    cache.valid[i, at:at + n] = True
    cache.positions[i] = n


def _kept_tokens(cache: KVCache, row: int) -> tuple[np.ndarray, torch.Tensor]:
    """A kept row's real tokens (padding left out) and the cache columns holding them, in order."""
    columns = cache.valid[row, :cache.length].nonzero().flatten()
    return np.asarray(cache.ids[row], dtype=np.int64)[columns.numpy()], columns


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading ids ``a`` and ``b`` share (numpy compares the overlap at once: kept rows run long)."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(differ[0]) if len(differ) else n
