"""Evaluation statistics against hand-computed values (REFERENCE §7 for the reflection kinds)."""

from __future__ import annotations

import math

import pytest

from reflectnb.errors import OptionError
from reflectnb.evaluate.stats import (binomial_two_sided, discordant, mcnemar_exact, paired_bootstrap,
                                      reflection_kind, transition, wilson)


def test_wilson_interval_of_7_out_of_10_at_95_percent():
    low, high = wilson(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)


def test_wilson_interval_stays_inside_0_1_at_the_extremes():
    low0, high0 = wilson(0, 10)
    low1, high1 = wilson(10, 10)
    assert low0 == 0.0 and round(high0, 4) == 0.2775
    assert high1 == 1.0 and round(low1, 4) == 0.7225


def test_wilson_interval_widens_with_the_confidence_level():
    assert wilson(7, 10, 0.99)[0] < wilson(7, 10, 0.95)[0] < wilson(7, 10, 0.80)[0]


def test_wilson_interval_of_no_items_is_undefined():
    assert all(math.isnan(x) for x in wilson(0, 0))


@pytest.mark.parametrize("k, n, confidence, match", [(11, 10, 0.95, "0 <= k <= n"), (1, 10, 1.5, "between 0 and 1")])
def test_wilson_rejects_impossible_inputs(k, n, confidence, match):
    with pytest.raises(OptionError, match=match):
        wilson(k, n, confidence)


def test_exact_mcnemar_for_one_against_six_discordant_pairs():
    # n = 7 discordant pairs; P(X <= 1) = (1 + 7) / 128; two-sided = 16/128
    assert mcnemar_exact(1, 6) == pytest.approx(0.125)
    assert mcnemar_exact(6, 1) == pytest.approx(0.125)


def test_exact_mcnemar_for_two_against_eight():
    # (C(10,0) + C(10,1) + C(10,2)) / 1024 * 2 = 56 / 512
    assert mcnemar_exact(2, 8) == pytest.approx(56 / 512)


def test_exact_mcnemar_is_one_without_discordant_pairs_or_when_balanced():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0


def test_binomial_two_sided_of_all_successes():
    assert binomial_two_sided(5, 5) == pytest.approx(2 / 32)


def test_discordant_counts_items_only_one_method_got_right():
    assert discordant([1, 1, 0, 0, 1], [0, 1, 1, 0, 0]) == (2, 1)


def test_paired_bootstrap_difference_and_interval():
    a = [1] * 8 + [0] * 2
    b = [1] * 5 + [0] * 5
    diff, low, high = paired_bootstrap(a, b, resamples=4000, seed=1)
    assert diff == pytest.approx(0.3)
    assert 0.0 <= low < 0.3 < high <= 0.6  # the diffs are 0/1, so the CI cannot leave [0, 0.6]


def test_paired_bootstrap_is_reproducible_and_exact_for_identical_methods():
    a = [1, 0, 1, 1, 0, 1]
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
    b = [0, 0, 1, 0, 1, 1]
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)


def test_paired_comparison_needs_the_same_items():
    with pytest.raises(OptionError, match="same items"):
        paired_bootstrap([1, 0], [1])


@pytest.mark.parametrize("before, after, name", [(False, True, "wrong→right"), (True, False, "right→wrong"),
                                                  (True, True, "right→right"), (False, False, "wrong→wrong")])
def test_transition_names(before, after, name):
    assert transition(before, after) == name


def test_first_try_matters_example_candidates_15_15_16_with_gold_16():
    # REFERENCE §7 test 1: labels [F, F, T]; F→F(same) is confirmatory, F→T corrective
    assert reflection_kind(False, False, same_answer=True) == "confirmatory"
    assert reflection_kind(False, True, same_answer=False) == "corrective"


def test_other_reflections_are_right_to_wrong_and_wrong_to_a_different_wrong():
    assert reflection_kind(True, False, same_answer=False) == "other"
    assert reflection_kind(False, False, same_answer=False) == "other"
    assert reflection_kind(True, True, same_answer=False) == "confirmatory"


@pytest.mark.parametrize("resamples", [0, -5, 2.5, True])
def test_paired_bootstrap_needs_a_positive_number_of_resamples(resamples):
    with pytest.raises(OptionError, match=r"`resamples` must be a positive integer \(e.g. 2000\), got "):
        paired_bootstrap([1, 0], [0, 0], resamples=resamples)
