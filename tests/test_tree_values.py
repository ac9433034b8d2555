"""REFERENCE §8 numbers: ToT value map and selection, ReST-MCTS* UCT, rollout update, backups, PRM targets."""

from __future__ import annotations

import math
import random

import pytest

from reflectnb.errors import OptionError
from reflectnb.strategies.tree import (backup_value, prm_path_targets, prm_target, prm_targets, rollout_update,
                                       select_greedy, select_sample, uct_score, value_from_outputs,
                                       votes_from_outputs)
from reflectnb.strategies.tree.budget import check_budget, estimate_bfs, estimate_dfs, estimate_mcts
from reflectnb.strategies.tree.select import best_uct
from reflectnb.strategies.tree.values import as_number, call_value_fn, value_label


def test_value_outputs_sure_likely_impossible_sum_to_21_001():
    assert value_from_outputs(["4 + 20 = 24\nsure", "maybe\nlikely", "too small\nimpossible"]) == pytest.approx(21.001)


def test_value_word_is_read_from_the_last_line_only():
    assert value_label("sure\nwell, impossible") == "impossible"
    assert value_label("I am sure it works\n10 + 2") is None
    assert value_from_outputs(["no verdict", ""]) == 0


def test_greedy_keeps_the_five_highest_of_seven_with_stable_order_on_ties():
    values = [1.0, 20.0, 3.0, 20.0, 0.001, 3.0, 3.0]
    assert select_greedy(values, 5) == [1, 3, 2, 5, 6]


def test_greedy_treats_missing_values_as_zero():
    assert select_greedy([None, 0.5, None], 2) == [1, 0]


def test_sample_selection_with_all_zero_values_does_not_divide_by_zero():
    picked = select_sample([0, 0, 0, 0], 3, random.Random(1))
    assert len(picked) == 3 and len(set(picked)) == 3


def test_sample_selection_never_picks_a_zero_value_while_positive_ones_remain():
    for seed in range(20):
        assert select_sample([0, 5, 0, 1], 2, random.Random(seed)) in ([1, 3], [3, 1])


def test_sample_selection_is_reproducible_with_the_same_seed():
    values = [1, 2, 3, 4, 5, 6]
    assert select_sample(values, 3, random.Random(7)) == select_sample(values, 3, random.Random(7))


def test_an_unvisited_child_scores_v_plus_0_8():
    assert uct_score(0.3, visits=0, parent_visits=5) == pytest.approx(1.1)


def test_uct_arithmetic_matches_the_formula():
    expected = 0.5 + 0.4 * math.sqrt(2 * math.log(10) / 3)
    assert uct_score(0.5, visits=3, parent_visits=10) == pytest.approx(expected)
    assert uct_score(0.5, visits=3, parent_visits=10, c_uct=0.7) == pytest.approx(0.5 + 0.7 * math.sqrt(2 * math.log(10) / 3))


def test_uct_prefers_an_unvisited_child_over_a_much_better_visited_one():
    assert best_uct([(0.9, 4), (0.6, 0)], parent_visits=5, rng=random.Random(0)) == 1  # 1.4 > 1.259


def test_uct_ties_are_broken_at_random_but_reproducibly():
    kids = [(0.5, 0)] * 4
    picks = {best_uct(kids, 1, random.Random(seed)) for seed in range(30)}
    assert len(picks) > 1
    assert best_uct(kids, 1, random.Random(3)) == best_uct(kids, 1, random.Random(3))


def test_rollout_update_is_0_65():
    assert rollout_update(0.4, 0.9, alpha=0.5) == pytest.approx(0.65)


def test_backup_is_the_visit_weighted_mean_of_children():
    assert backup_value([(0.2, 1), (0.8, 3)]) == pytest.approx((0.2 + 2.4) / 4)
    assert backup_value([(0.7, 0)]) is None


def test_value_targets_from_zero_reach_one_third_two_thirds_one():
    assert prm_path_targets([1, 1, 1], [3, 2, 1]) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_value_target_from_half_with_a_wrong_step_is_a_quarter():
    assert prm_target(0.5, -1, 2) == pytest.approx(0.25)


def test_value_targets_never_go_below_zero():
    assert prm_target(0.1, -1, 1) == 0.0
    assert min(prm_path_targets([-1, -1, -1], [1, 1, 1])) == 0.0


def test_tree_targets_follow_the_path_to_the_correct_leaf():
    parents = {0: None, 1: 0, 2: 1, 3: 2, 4: 0}  # 0 → 1 → 2 → 3 (correct); 0 → 4 (dead end)
    targets = prm_targets(parents, correct=[3])
    assert [targets[i] for i in (1, 2, 3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert targets[4] == 0.0


def test_votes_count_best_choice_lines_from_one():
    assert votes_from_outputs(["The best choice is 3", "best choice is 1", "choice 9"], 3) == [1.0, 0.0, 1.0]


def test_verifier_results_become_numbers_or_failures():
    assert as_number(True) == 1.0 and as_number(0.25) == 0.25
    assert "expected a bool or a number" in as_number("yes").message
    assert "NaN" in as_number(float("nan")).message
    assert call_value_fn(lambda s: 1 / 0, "x").message.startswith("raised ZeroDivisionError")


@pytest.mark.parametrize("bad, shown", [(float("inf"), "+inf"), (float("-inf"), "-inf"), (10**400, "+inf")])
def test_infinite_verifier_results_are_failures_like_nan(bad, shown):
    import numpy as np

    assert as_number(bad).message == f"returned {shown}, expected a bool or a finite number"
    assert as_number(np.float64(bad) if isinstance(bad, float) else bad).message.startswith(f"returned {shown}")


def test_budget_estimates_follow_each_algorithm():
    assert estimate_bfs(branch=8, depth=4, beam=5) == 1 + 8 + 40 + 40 + 40
    assert estimate_mcts(branch=3, depth=10, iterations=100) == 301
    assert estimate_dfs(branch=5, depth=4, tries=3, max_visits=100) == 1 + 40 * 5


def test_an_exploding_budget_is_refused_with_the_estimated_node_count():
    with pytest.raises(OptionError, match=r"this search would create about 2,441,406 nodes \(branch 5, depth 9\); "
                                          r"raise max_nodes or lower branch/depth"):
        check_budget(estimate_dfs(5, 9, 5, None), 10_000, 5, 9)
