"""Reflection vocabulary on the embedded model's real tokenizer (SmolLM2, byte-level BPE)."""

from __future__ import annotations

import numpy as np
import pytest

from reflectnb.decoding.vocab import (DEFAULT_WORDS, ReflectionVocab, expand, flag_reflection, resolve_form,
                                      resolve_token_id)
from reflectnb.errors import OptionError

model = pytest.mark.model  # tests that load the embedded model's tokenizer

# Measured on SmolLM2-135M-Instruct's tokenizer (49,152 tokens).
EXACT = {"wait": 14006, "Wait": 33359, "but": 5476, "But": 2596, "Alternatively": 40714}
SPACE = {" wait": 5847, " Wait": 22297, " but": 564, " But": 1249, " Alternatively": 18199}


@model
def test_exact_variant_resolves_the_five_cyclicreflex_words_to_single_tokens(smol_tokenizer):
    vocab = ReflectionVocab(smol_tokenizer, DEFAULT_WORDS, variants="exact")
    assert vocab.ids == frozenset(EXACT.values())
    assert vocab.missing == [] and vocab.multi_token == []


@model
def test_exact_ids_agree_with_convert_tokens_to_ids_like_the_reference(smol_tokenizer):
    assert {w: smol_tokenizer.convert_tokens_to_ids(w) for w in EXACT} == EXACT


@model
def test_exact_plus_space_adds_the_leading_space_tokens(smol_tokenizer):
    vocab = ReflectionVocab(smol_tokenizer, variants="exact+space")
    assert vocab.ids == frozenset(EXACT.values()) | frozenset(SPACE.values())
    table = vocab.table()
    assert table.loc[table.text == " wait", "tokens"].item() == ["Ġwait"]


@model
def test_space_forms_resolve_where_a_bare_convert_tokens_to_ids_gives_the_unk_id(smol_tokenizer):
    assert smol_tokenizer.convert_tokens_to_ids(" wait") == smol_tokenizer.unk_token_id
    assert resolve_form(smol_tokenizer, " wait") == (5847,)


@model
def test_all_case_space_reports_multi_token_forms_and_biases_their_first_sub_token(smol_tokenizer):
    vocab = ReflectionVocab(smol_tokenizer, variants="all_case_space")
    assert vocab.multi_token == ["alternatively"]
    row = vocab.table().set_index("text").loc["alternatively"]
    assert row.token_ids == [29516, 3047] and row.tokens == ["altern", "atively"] and not row.single_token
    assert row.biased_id == 29516 and 29516 in vocab
    assert len(vocab.table()) == 12  # "wait"/"Wait" etc. overlap: each text appears once


@model
def test_multi_token_skip_leaves_multi_token_forms_out(smol_tokenizer):
    vocab = ReflectionVocab(smol_tokenizer, ["alternatively", "Wait"], multi_token="skip")
    assert vocab.ids == {33359} and vocab.table().biased_id.isna().tolist() == [True, False]


@model
def test_table_has_one_row_per_form_with_the_documented_columns(smol_tokenizer):
    table = ReflectionVocab(smol_tokenizer, ["Wait"], variants="exact+space").table()
    assert list(table.columns) == ["word", "variant", "text", "token_ids", "tokens", "single_token", "biased_id"]
    assert table[["variant", "text", "biased_id"]].values.tolist() == [["exact", "Wait", 33359],
                                                                        ["space", " Wait", 22297]]


@model
def test_end_of_thinking_is_not_a_single_token_of_smollm2(smol_tokenizer):
    assert resolve_token_id(smol_tokenizer, "</think>") is None
    assert resolve_token_id(smol_tokenizer, "<|im_end|>") == smol_tokenizer.convert_tokens_to_ids("<|im_end|>")


@model
def test_flag_reflection_marks_single_tokens_and_complete_multi_token_words(smol_tokenizer):
    vocab = ReflectionVocab(smol_tokenizer, ["Wait", "alternatively"])
    generated = [33359, 29516, 3047, 29516, 13, 22297]  # Wait, altern+atively, altern alone, ., " Wait"
    assert flag_reflection(generated, vocab).tolist() == [True, True, False, False, False, False]
    assert flag_reflection(generated, vocab.ids).tolist() == [True, True, False, True, False, False]


def test_flag_reflection_of_nothing_is_an_empty_bool_array():
    out = flag_reflection([], {1, 2})
    assert out.dtype == np.bool_ and out.shape == (0,)


def test_expand_lists_the_forms_of_each_variant():
    assert expand("Wait", "all_case_space") == [("exact", "Wait"), ("space", " Wait"), ("case", "wait"),
                                                ("case+space", " wait")]


@pytest.mark.parametrize("kwargs,match", [
    ({"variants": "fuzzy"}, "`variants` must be one of exact, exact\\+space, all_case_space; got 'fuzzy'"),
    ({"words": []}, "`words` must be a non-empty list of non-empty strings, got \\[\\]"),
    ({"words": ["Wait", ""]}, "`words` must be a non-empty list"),
    ({"multi_token": "all"}, "`multi_token` must be 'first' or 'skip', got 'all'"),
])
@model
def test_bad_arguments_are_option_errors(smol_tokenizer, kwargs, match):
    with pytest.raises(OptionError, match=match):
        ReflectionVocab(smol_tokenizer, **kwargs)


def test_words_missing_from_a_word_level_vocabulary_are_reported_and_none_at_all_is_an_error():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(WordLevel({"<unk>": 0, "Wait": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    vocab = ReflectionVocab(tokenizer, ["Wait", "Hmm"])
    assert vocab.ids == {1} and vocab.missing == ["Hmm"]
    with pytest.raises(OptionError, match=r"none of the reflection words \['Hmm'\] is in this tokenizer"):
        ReflectionVocab(tokenizer, ["Hmm"])
