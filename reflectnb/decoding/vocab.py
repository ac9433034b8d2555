"""Reflection vocabulary: words like "Wait" resolved to the token ids a decoding hook biases.

Contract
--------
* :class:`ReflectionVocab` turns a word list into token ids of one (Hugging
  Face) tokenizer. Each word expands into *forms* by ``variants``:

  ``"exact"``           the string as written (CyclicReflex: ``convert_tokens_to_ids``);
  ``"exact+space"``     plus the leading-space form (``" wait"``, BPE token ``Ġwait``);
  ``"all_case_space"``  lower / Capitalised / as written, each with and without a space.

* A form is resolved with ``tokenizer.encode(form, add_special_tokens=False)``
  and checked against the vocabulary, never with a bare
  ``convert_tokens_to_ids`` (which silently returns the unk id). A form that
  encodes to several tokens is *multi-token*: only its first sub-token is
  biased (an approximation, reported in :meth:`ReflectionVocab.table`). A form
  made only of unk tokens is *missing*. If nothing resolves: ``OptionError``.
* :func:`flag_reflection` marks which generated ids are reflection tokens (the
  token trace's ``is_reflection``).

Non-goals: choosing words for you, multi-token *biasing* (we bias one id per form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from reflectnb.errors import OptionError

DEFAULT_WORDS: tuple[str, ...] = ("wait", "Wait", "but", "But", "Alternatively")
VARIANTS: tuple[str, ...] = ("exact", "exact+space", "all_case_space")
_SPACE_MARKS = ("Ġ", "▁")  # byte-level BPE and SentencePiece spellings of a leading space


@dataclass(frozen=True)
class Form:
    """One spelling of a word and the token ids it encodes to (empty when missing)."""

    word: str
    variant: str
    text: str
    ids: tuple[int, ...]
    tokens: tuple[str, ...]

    @property
    def single_token(self) -> bool:
        return len(self.ids) == 1

    @property
    def missing(self) -> bool:
        return not self.ids


def expand(word: str, variants: str) -> list[tuple[str, str]]:
    """The ``(variant label, text)`` forms of ``word``; labels are ``exact``, ``space``, ``case``, ``case+space``.

    Examples
    --------
    >>> expand("wait", "exact+space")
    [('exact', 'wait'), ('space', ' wait')]
    """
    if variants not in VARIANTS:
        raise OptionError(f"`variants` must be one of {', '.join(VARIANTS)}; got {variants!r}")
    forms = [("exact", word)]
    if variants == "exact":
        return forms
    forms.append(("space", " " + word))
    if variants == "all_case_space":
        for case in dict.fromkeys((word.lower(), word[:1].upper() + word[1:])):
            if case != word:
                forms += [("case", case), ("case+space", " " + case)]
    return forms


def _gained_space(text: str, token: str) -> bool:
    """True when the tokenizer added a leading space the text does not have (SentencePiece prefix)."""
    return token[:1] in _SPACE_MARKS and not text[:1].isspace() and text[:1] not in _SPACE_MARKS


def _vocab_spellings(text: str) -> list[str]:
    if text.startswith(" "):
        return [mark + text[1:] for mark in _SPACE_MARKS]
    return [text]


def resolve_form(tokenizer: Any, text: str) -> tuple[int, ...]:
    """Token ids of ``text`` (one id when it is a single token), or ``()`` when only unk comes out.

    Examples
    --------
    >>> resolve_form(tok, "Wait")  # doctest: +SKIP
    (33359,)
    """
    ids = tuple(int(i) for i in tokenizer.encode(text, add_special_tokens=False))
    unk = getattr(tokenizer, "unk_token_id", None)
    if len(ids) == 1 and ids[0] != unk:
        token = tokenizer.convert_ids_to_tokens(ids[0]) or ""
        if not _gained_space(text, token):
            return ids
    vocab = tokenizer.get_vocab()
    for spelling in _vocab_spellings(text):
        if spelling in vocab:
            return (int(vocab[spelling]),)
    if not ids or (unk is not None and unk in ids and text != getattr(tokenizer, "unk_token", None)):
        return ()
    return ids


def resolve_token_id(tokenizer: Any, text: str | None) -> int | None:
    """The id of ``text`` when it is one token of this tokenizer (e.g. ``"</think>"``), else ``None``."""
    if not text:
        return None
    ids = resolve_form(tokenizer, text)
    return ids[0] if len(ids) == 1 else None


class ReflectionVocab:
    """Reflection words resolved to the token ids of one tokenizer.

    Parameters
    ----------
    tokenizer : a Hugging Face tokenizer (``encode``, ``convert_ids_to_tokens``, ``get_vocab``).
    words : sequence of str
        Default ``("wait", "Wait", "but", "But", "Alternatively")`` (CyclicReflex's V̂).
    variants : {"exact", "exact+space", "all_case_space"}
        Which spellings to add (see the module docstring). ``"exact"`` matches CyclicReflex.
    multi_token : {"first", "skip"}
        Bias the first sub-token of a multi-token form (default), or leave such forms out.

    Attributes
    ----------
    ids : frozenset of int
        The ids a processor biases (first sub-token of multi-token forms).
    forms, missing, multi_token : the resolved forms, and the texts that were missing / multi-token.

    Examples
    --------
    >>> vocab = ReflectionVocab(tokenizer, variants="exact+space")   # doctest: +SKIP
    >>> vocab.table()[["text", "token_ids", "single_token"]]        # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, words: Sequence[str] = DEFAULT_WORDS, variants: str = "exact",
                 multi_token: str = "first"):
        words = _check_words(words)
        if multi_token not in ("first", "skip"):
            raise OptionError(f"`multi_token` must be 'first' or 'skip', got {multi_token!r}")
        self.tokenizer, self.words, self.variants = tokenizer, words, variants
        self.forms = _forms(tokenizer, words, variants)
        self.missing = [f.text for f in self.forms if f.missing]
        self.multi_token = [f.text for f in self.forms if len(f.ids) > 1]
        self.biased = [f for f in self.forms if f.single_token or (multi_token == "first" and f.ids)]
        self.ids = frozenset(f.ids[0] for f in self.biased)
        if not self.ids:
            raise OptionError(f"none of the reflection words {list(words)} is in this tokenizer's "
                              f"vocabulary (variants={variants!r}); pass other `words`")

    @property
    def id_list(self) -> list[int]:
        """The biased ids, sorted (handy for indexing a scores tensor)."""
        return sorted(self.ids)

    def __contains__(self, token_id: object) -> bool:
        return token_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"ReflectionVocab(words={list(self.words)!r}, variants={self.variants!r}, "
                f"ids={self.id_list}, missing={self.missing}, multi_token={self.multi_token})")

    def table(self):
        """One row per form: word, variant, text, token_ids, tokens, single_token, biased_id.

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        rows = [{"word": f.word, "variant": f.variant, "text": f.text, "token_ids": list(f.ids),
                 "tokens": list(f.tokens), "single_token": f.single_token,
                 "biased_id": f.ids[0] if f in self.biased else None} for f in self.forms]
        frame = pd.DataFrame(rows, columns=["word", "variant", "text", "token_ids", "tokens",
                                            "single_token", "biased_id"])
        return frame.astype({"biased_id": "Int64"})


def _forms(tokenizer: Any, words: tuple[str, ...], variants: str) -> list[Form]:
    """Every form of every word, each text once (``all_case_space`` makes "wait" and "Wait" overlap)."""
    seen: dict[str, Form] = {}
    for word in words:
        for label, text in expand(word, variants):
            if text not in seen:
                ids = resolve_form(tokenizer, text)
                seen[text] = Form(word, label, text, ids, tuple(tokenizer.convert_ids_to_tokens(list(ids))))
    return list(seen.values())


def _check_words(words: Sequence[str]) -> tuple[str, ...]:
    if isinstance(words, str):
        words = (words,)
    words = tuple(words)
    bad = [w for w in words if not isinstance(w, str) or not w]
    if not words or bad:
        raise OptionError(f"`words` must be a non-empty list of non-empty strings, got {list(words)!r}")
    return words


def flag_reflection(token_ids: Iterable[int], vocab: ReflectionVocab | Iterable[int]) -> np.ndarray:
    """Which generated ids are reflection tokens, as a bool array the length of ``token_ids``.

    With a :class:`ReflectionVocab`, a multi-token form counts only where its
    *whole* id sequence appears (its first token is flagged); with a plain id set,
    membership is enough.

    Examples
    --------
    >>> flag_reflection([5, 7, 5], {5}).tolist()
    [True, False, True]
    """
    ids = np.asarray(list(token_ids), dtype=np.int64)
    if not isinstance(vocab, ReflectionVocab):
        return np.isin(ids, np.fromiter((int(i) for i in vocab), dtype=np.int64))
    single = [f.ids[0] for f in vocab.forms if f.single_token]
    flags = np.isin(ids, np.asarray(single, dtype=np.int64))
    for seq in {f.ids for f in vocab.forms if len(f.ids) > 1}:
        flags |= _sequence_starts(ids, seq)
    return flags


def _sequence_starts(ids: np.ndarray, seq: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(len(ids), dtype=bool)
    n = len(seq)
    if len(ids) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(ids, n)
        out[: len(windows)] = (windows == np.asarray(seq)).all(axis=1)
    return out
