"""The game of 24 and arithmetic tasks: safe checker, procedural puzzles, exact process rewards, prompts."""

from __future__ import annotations

import re

import pytest

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.strategies.tree import (ArithmeticTask, Game24Task, arithmetic_tasks, can_reach_24, check_24,
                                       game24_puzzles, tot_bfs)
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


# -- a whole search on the game of 24, with scripted model replies ------------------------------------------

SOLUTION = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)",
            "Answer: (10 - 4) * (13 - 9) = 24"]


def game24_backend(proposals: dict[str, list[str]], values: dict[str, str]) -> ScriptedBackend:
    """Replies to Game24Task's prompts: next steps by the numbers left, value words by numbers (or 'judge')."""
    def script(prompt: str, index: int) -> str:
        lines = prompt.strip().splitlines()
        if prompt.startswith("Judge whether"):
            return values["judge"]
        if prompt.startswith("Can these numbers make 24?"):
            return "thinking\n" + values.get(lines[-1], "impossible")
        if prompt.startswith("Use the numbers"):  # the numbers left are 24: write the answer line
            return SOLUTION[3]
        numbers = re.search(r"Input: (.*)\nPossible next steps:\n$", prompt).group(1)
        return "\n".join(proposals.get(numbers, []))

    return ScriptedBackend(script)


def test_tot_bfs_solves_a_game_of_24_puzzle_and_the_answer_passes_the_checker():
    task = Game24Task("4 9 10 13")
    model = game24_backend({"4 9 10 13": [SOLUTION[0], "4 + 9 = 13 (left: 10 13 13)"], "4 4 10": [SOLUTION[1]],
                            "4 6": [SOLUTION[2]]},
                           {"4 4 10": "sure", "10 13 13": "impossible", "4 6": "sure", "24": "sure", "judge": "sure"})
    result = tot_bfs(model, task, beam=1, n_evaluate=3)
    assert result.stop_reason == "depth" and len(model.calls) == 2 * 4  # four layers: propose, value
    assert [result.nodes[i].text for i in result.best_path[1:]] == SOLUTION
    assert result.answer == "(10 - 4) * (13 - 9)" and check_24(result.answer, task.question)
    assert task.verify(result.state(result.best_path[-1]))
    dead_end = next(n for n in result.nodes if n.text.startswith("4 + 9"))
    assert dead_end.value == pytest.approx(0.003) and dead_end.status == "pruned"
    assert result.best_node.value == 60 and result.best_node.status == "terminal"


def test_a_wrong_proposal_gets_zero_from_the_exact_process_reward_and_is_pruned():
    task = Game24Task("4 9 10 13")
    wrong = "13 - 9 = 5 (left: 4 5 10)"  # bad arithmetic the model is sure about
    model = game24_backend({"4 9 10 13": [wrong, SOLUTION[0]], "4 4 10": [SOLUTION[1]], "4 5 10": [wrong],
                            "4 6": [SOLUTION[2]]}, {"judge": "sure"})
    result = tot_bfs(model, task, beam=1, prm=task.process_reward)
    first = result.children(0)
    assert [(n.text, n.value, n.status) for n in first] == [(wrong, 0.0, "pruned"), (SOLUTION[0], 1.0, "selected")]
    assert all(not n.text.startswith("Answer") or n.value == 1.0 for n in result.nodes)
    assert result.answer and check_24(result.answer, task.question)
    assert len(model.calls) == 4  # the PRM needs no model calls: proposals only
