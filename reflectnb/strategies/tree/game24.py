"""The game of 24 as a tree-search task (ToT's showcase), with an exact checker and oracle.

* :func:`check_24` validates an answer expression with ``ast`` (never ``eval``):
  only integer literals, ``+ - * /`` and parentheses; the literals must be the
  four puzzle numbers, each used once; exact :class:`~fractions.Fraction`
  arithmetic must give 24.
* :func:`game24_puzzles` enumerates the 1,820 multisets of four numbers from
  1..13 and keeps the solvable ones (1,362) by brute force — no data download.
* :class:`Game24Task` speaks ToT's step format ``a op b = c (left: …)`` with its
  own short few-shot prompts, ToT's value rule (a 4-line state without an
  answer is worth 0), ``verify`` (the checker) and ``process_reward`` (exact:
  every step is right and the numbers left can still make 24).

Non-goals: the paper's 1,362-puzzle difficulty ordering (ToT's CSV is not used).
"""

from __future__ import annotations

import ast
import itertools
import random
import re
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

from reflectnb.backends.base import Prompt
from reflectnb.errors import OptionError
from reflectnb.strategies.tree.tasks import Task, lines_of
from reflectnb.strategies.tree.values import value_from_outputs

_STEP = re.compile(r"^\s*([\d./]+)\s*([-+*/×÷])\s*([\d./]+)\s*=\s*([\d./]+)\s*\(left:\s*([^)]*)\)")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}


def _eval(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, used), _eval(node.right, used))
    raise ValueError(f"not allowed in a 24 answer: {ast.dump(node)[:40]}")


def answer_expression(text: str) -> str:
    """The expression part of an answer line: ``"Answer: (1+2)*8 = 24"`` → ``"(1+2)*8"``."""
    line = lines_of(text)[-1] if lines_of(text) else ""
    line = re.sub(r"^\s*answer\s*:\s*", "", line, flags=re.I)
    return line.split("=")[0].replace("×", "*").replace("÷", "/").strip()


def check_24(expression: str, numbers: Sequence[int] | str) -> bool:
    """True when ``expression`` uses each of ``numbers`` once and equals 24.

    Examples
    --------
    >>> check_24("(13 - 9) * (10 - 4)", "4 9 10 13")
    True
    >>> check_24("4 * 6", "4 9 10 13"), check_24("__import__('os')", "1 2 3 4")
    (False, False)
    """
    wanted = sorted(int(n) for n in (numbers.split() if isinstance(numbers, str) else numbers))
    try:
        tree = ast.parse(answer_expression(expression), mode="eval")
        used: list[int] = []
        value = _eval(tree.body, used)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return False
    return sorted(used) == wanted and value == 24


@lru_cache(maxsize=None)
def _reach(numbers: tuple[Fraction, ...], target: Fraction) -> str | None:
    if len(numbers) == 1:
        return str(numbers[0]) if numbers[0] == target else None
    for i, j in itertools.permutations(range(len(numbers)), 2):
        rest = tuple(n for k, n in enumerate(numbers) if k not in (i, j))
        a, b = numbers[i], numbers[j]
        for op, value in (("+", a + b), ("-", a - b), ("*", a * b), ("/", a / b if b else None)):
            if value is None:
                continue
            sub = _reach(tuple(sorted(rest + (value,))), target)
            if sub is not None:
                return f"{a} {op} {b} -> {sub}"
    return None


def can_reach_24(numbers: Sequence[Fraction | int]) -> bool:
    """Whether the numbers (any count ≥ 1) can still make 24 with + - * /."""
    return bool(numbers) and _reach(tuple(sorted(Fraction(n) for n in numbers)), Fraction(24)) is not None


def game24_puzzles(limit: int | None = None, seed: int | None = None) -> list[str]:
    """Solvable puzzles ``"a b c d"`` (ascending) from 1..13; shuffled when ``seed`` is given.

    Examples
    --------
    >>> len(game24_puzzles()), game24_puzzles()[0]
    (1362, '1 1 1 8')
    """
    found = [" ".join(map(str, c)) for c in itertools.combinations_with_replacement(range(1, 14), 4)
             if can_reach_24(c)]
    if seed is not None:
        random.Random(seed).shuffle(found)
    return found[:limit] if limit is not None else found


def current_numbers(state: str, puzzle: str) -> str:
    """The numbers still in play: the last ``(left: …)`` of the state, else the puzzle."""
    lines = lines_of(state)
    last = lines[-1] if lines else ""
    return last.split("left:")[-1].split(")")[0].strip() if "left:" in last else puzzle


_PROPOSE = """Input: 3 5 6 9
Possible next steps:
3 + 5 = 8 (left: 6 8 9)
9 - 6 = 3 (left: 3 3 5)
6 * 3 = 18 (left: 5 9 18)
9 / 3 = 3 (left: 3 5 6)
5 + 9 = 14 (left: 3 6 14)
Input: {numbers}
Possible next steps:
"""
_COT = """Use the numbers and + - * / to make 24. Each step combines two of the numbers left.
Input: 2 3 4 6
Steps:
6 - 2 = 4 (left: 3 4 4)
4 + 4 = 8 (left: 3 8)
3 * 8 = 24 (left: 24)
Answer: (4 + (6 - 2)) * 3 = 24
Input: {numbers}
Steps:
"""
_VALUE = """Can these numbers make 24? Judge sure, likely or impossible.
6 4
6 * 4 = 24
sure
1 2 2
1 + 2 + 2 = 5
1 * 2 * 2 = 4
numbers too small
impossible
3 7 9
9 - 7 = 2, 2 * 3 = 6
7 + 9 = 16, 16 + 3 = 19
cannot reach 24 yet, but the numbers are close
likely
{numbers}
"""
_JUDGE = """Judge whether the answer uses each input number exactly once and makes 24 (sure/impossible).
Input: 2 3 4 6
Answer: (4 + (6 - 2)) * 3 = 24
Judge:
sure
Input: 2 3 4 6
Answer: 2 * 3 * 4 = 24
Judge:
impossible
Input: {numbers}
Answer: {answer}
Judge:
"""


def puzzle_numbers(text: str) -> list[str]:
    """The four whole numbers of a puzzle (spaces or commas between them), else an OptionError.

    Examples
    --------
    >>> puzzle_numbers("4, 9, 10, 13")
    ['4', '9', '10', '13']
    >>> puzzle_numbers("make 24")
    Traceback (most recent call last):
    ...
    reflectnb.errors.OptionError: the game of 24 needs four whole numbers such as '4 9 10 13', got 'make 24'
    """
    words = text.replace(",", " ").split()
    if len(words) != 4 or not all(w.isascii() and w.isdigit() and len(w) <= 6 for w in words):
        raise OptionError(f"the game of 24 needs four whole numbers such as '4 9 10 13', got {text.strip()[:60]!r}")
    return [str(int(w)) for w in words]


class Game24Task(Task):
    """One game-of-24 puzzle, e.g. ``Game24Task("4 9 10 13")`` (4 steps: 3 operations + answer).

    Examples
    --------
    >>> t = Game24Task("4 9 10 13")
    >>> t.process_reward(t.question, "13 - 9 = 4 (left: 4 4 10)\\n")
    1.0
    >>> t.process_reward(t.question, "13 - 9 = 5 (left: 4 5 10)\\n")  # wrong arithmetic
    0.0
    """

    def __init__(self, numbers: str | Sequence[int]):
        text = numbers if isinstance(numbers, str) else " ".join(map(str, numbers))
        super().__init__(question=" ".join(puzzle_numbers(text)), steps=4, chat=False)

    def propose_prompt(self, state: str) -> Prompt:
        left = current_numbers(state, self.question)
        if left == "24":
            return _COT.format(numbers=self.question) + state
        return _PROPOSE.format(numbers=left)

    def sample_prompt(self, state: str) -> Prompt:
        return _COT.format(numbers=self.question) + state

    def solve_prompt(self) -> Prompt:
        return _COT.format(numbers=self.question)

    def value_prompt(self, state: str) -> Prompt:
        if self.is_final(state):
            return _JUDGE.format(numbers=self.question, answer=answer_expression(state))
        return _VALUE.format(numbers=current_numbers(state, self.question))

    def value_of(self, state: str, outputs: Sequence[str]) -> float:
        if len(lines_of(state)) == 4 and "answer" not in state.lower():
            return 0.0
        return value_from_outputs(outputs, self.value_map)

    def is_final(self, state: str) -> bool:
        lines = lines_of(state)
        return bool(lines) and lines[-1].lower().startswith("answer")

    def answer(self, state: str) -> str:
        return answer_expression(state) if self.is_final(state) else ""

    def verify(self, state: str) -> bool:
        """The checker applied to the state's answer line."""
        return self.is_final(state) and check_24(self.answer(state), self.question)

    def process_reward(self, question: str, partial: str) -> float:
        """1.0 when every step is right and the numbers left can still make 24, else 0.0."""
        left = [Fraction(n) for n in question.split()]
        for line in lines_of(partial):
            if line.lower().startswith("answer"):
                return 1.0 if check_24(line, question) else 0.0
            left = _after_step(line, left)
            if left is None:
                return 0.0
        return 1.0 if can_reach_24(left) else 0.0


def _after_step(line: str, left: list[Fraction]) -> list[Fraction] | None:
    match = _STEP.match(line)
    if match is None:
        return None
    try:
        a, b, c = (Fraction(match.group(k)) for k in (1, 3, 4))
        claimed = sorted(Fraction(n) for n in match.group(5).split())
    except (ValueError, ZeroDivisionError):
        return None
    op = {"×": "*", "÷": "/"}.get(match.group(2), match.group(2))
    real = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]
    rest = list(left)
    for n in (a, b):
        if n not in rest:
            return None
        rest.remove(n)
    if real != c or sorted(rest + [c]) != claimed:
        return None
    return claimed
