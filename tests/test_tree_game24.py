"""The game of 24 and arithmetic tasks: safe checker, procedural puzzles, exact process rewards, prompts."""

from __future__ import annotations

import pytest

from reflectnb.strategies.tree import ArithmeticTask, Game24Task, arithmetic_tasks, can_reach_24, check_24, game24_puzzles
from reflectnb.strategies.tree.game24 import answer_expression, current_numbers


def test_a_correct_expression_using_each_number_once_is_accepted():
    assert check_24("(13 - 9) * (10 - 4)", "4 9 10 13")
    assert check_24("Answer: (1 + 8 / 4) * 8 = 24", [1, 4, 8, 8])


@pytest.mark.parametrize("expression", [
    "4 * 6",                       # numbers missing
    "(13 - 9) * (10 - 4) + 0",     # an extra number
    "(13 - 9) * (10 - 4) - 1",     # wrong value
    "4 ** 2 + 9 - 10 + 13",        # operator not allowed
    "__import__('os').system('x')",  # never evaluated
    "13 / (10 - 10) + 4 + 9",      # division by zero
    "(13 - 9) * (10 - 4",          # syntax error
    "4.0 * 6 + 9 - 10 + 13 - 13",  # float literal
])
def test_invalid_expressions_are_rejected_without_eval(expression):
    assert not check_24(expression, "4 9 10 13")


def test_exact_fractions_make_division_puzzles_work():
    assert check_24("8 / (3 - 8 / 3)", "3 3 8 8")


def test_puzzles_are_enumerated_procedurally_and_all_solvable():
    puzzles = game24_puzzles()
    assert len(puzzles) == 1362  # of the 1,820 multisets of four numbers from 1..13
    assert "4 9 10 13" in puzzles and "1 1 1 1" not in puzzles
    assert all(can_reach_24([int(n) for n in p.split()]) for p in game24_puzzles(limit=25, seed=3))
    assert game24_puzzles(limit=5, seed=1) == game24_puzzles(limit=5, seed=1) != game24_puzzles(limit=5)


def test_process_reward_checks_arithmetic_bookkeeping_and_reachability():
    task = Game24Task("4 9 10 13")
    good = "13 - 9 = 4 (left: 4 4 10)\n10 - 4 = 6 (left: 4 6)\n4 * 6 = 24 (left: 24)\n"
    assert task.process_reward(task.question, good) == 1.0
    assert task.process_reward(task.question, "13 - 9 = 4 (left: 4 10)\n") == 0.0   # lost a number
    assert task.process_reward(task.question, "4 + 9 = 13 (left: 10 13 13)\n") == 0.0  # 10 13 13 cannot make 24
    assert task.process_reward(task.question, good + "Answer: (10 - 4) * (13 - 9) = 24\n") == 1.0
    assert task.process_reward(task.question, good + "Answer: 4 * 6 = 24\n") == 0.0


def test_the_task_reads_numbers_left_and_final_answers():
    task = Game24Task([4, 9, 10, 13])
    state = "13 - 9 = 4 (left: 4 4 10)\n"
    assert current_numbers(state, task.question) == "4 4 10"
    assert "Input: 4 4 10" in task.propose_prompt(state)
    assert "4 4 10" in task.value_prompt(state)
    final = state + "Answer: (10 - 4) * (13 - 9) = 24\n"
    assert task.is_final(final) and task.answer(final) == "(10 - 4) * (13 - 9)" and task.verify(final)
    assert "Judge" in task.value_prompt(final)
    assert answer_expression("Answer: 2 × 12 = 24") == "2 * 12"


def test_a_four_line_state_without_an_answer_is_worth_zero_as_in_tot():
    task = Game24Task("1 2 3 4")
    state = "a\nb\nc\nd\n"
    assert task.value_of(state, ["sure", "sure"]) == 0.0
    assert task.value_of("a\n", ["sure", "likely"]) == 21.0


def test_arithmetic_tasks_are_procedural_and_verifiable():
    tasks = arithmetic_tasks(5, seed=2)
    assert [t.expression for t in tasks] == [t.expression for t in arithmetic_tasks(5, seed=2)]
    task = ArithmeticTask("(3 + 5) * 2", 16)
    assert task.verify("3 + 5 = 8\n8 * 2 = 16\nAnswer: 16\n")
    assert not task.verify("3 + 5 = 8\n8 * 2 = 16\nAnswer: 17\n")
    assert not task.verify("3 + 5 = 9\n9 * 2 = 18\nAnswer: 16\n")
    assert task.process_reward(task.question, "3 + 5 = 8\n") == 1.0
    assert task.steps == 3
