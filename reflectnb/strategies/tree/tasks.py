"""What a tree search needs from a task: prompts, parsers, when a state is final, the answer.

A *state* is the partial solution so far: the step texts of a path, one per
line (``"step 1\\nstep 2\\n"``; the root's state is ``""``). :class:`Task` is
the generic version used for any question (``%%tree`` cells); subclasses (game
of 24, arithmetic) override the prompts and add a ``verify`` and an exact
``process_reward`` for teaching and tests.

Hooks (all plain text in, text or numbers out)
----------------------------------------------
``propose_prompt(state)`` one call listing several next steps, one a line;
``sample_prompt(state)`` one call writing just the next step;
``value_prompt(state)`` "sure / likely / impossible" evaluation;
``vote_prompt(states)`` "the best choice is N"; ``solve_prompt()`` a whole solution
(best-of-N, self-consistency);
``parse_proposals(text)``, ``parse_step(text)``, ``value_of(state, outputs)``,
``is_final(state)``, ``answer(state)``; ``steps`` is the default depth.

Non-goals: running models (the search does), grading free-form answers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

from reflectnb.backends.base import Prompt
from reflectnb.strategies.tree.values import VALUE_MAP, value_from_outputs
from reflectnb.strategies.voting import LOOP_RULE, extract_answer
from reflectnb.trace import Message

_FINAL = re.compile(r"answer is|\\boxed|^\s*answer\s*:", re.I | re.M)


def lines_of(text: str) -> list[str]:
    """Non-empty stripped lines."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass
class Task:
    """A generic reasoning task around one question.

    Parameters
    ----------
    question : str
    steps : int
        Default search depth (number of steps to a full solution).
    chat : bool
        Wrap prompts as one user message (instruct models) instead of raw text.

    Examples
    --------
    >>> t = Task("What is 2 + 3 * 4?")
    >>> t.is_final("3 * 4 = 12\\nThe answer is 14\\n"), t.answer("3 * 4 = 12\\nThe answer is 14\\n")
    (True, '14')
    """

    question: str
    steps: int = 3
    chat: bool = True
    value_map: dict[str, float] = field(default_factory=lambda: dict(VALUE_MAP))

    def wrap(self, text: str) -> Prompt:
        return [Message("user", text)] if self.chat else text

    def _so_far(self, state: str) -> str:
        return f"Steps so far:\n{state}" if state.strip() else "No steps yet."

    def propose_prompt(self, state: str) -> Prompt:
        return self.wrap(f"Question: {self.question}\n{self._so_far(state)}\n"
                         "List a few different possible next steps, one per line. "
                         "If the answer is known, write a line 'The answer is ...'.")

    def sample_prompt(self, state: str) -> Prompt:
        return self.wrap(f"Question: {self.question}\n{self._so_far(state)}\n"
                         "Write only the next step, in one line. "
                         "If the answer is known, write 'The answer is ...'.")

    def solve_prompt(self) -> Prompt:
        return self.wrap(f"Question: {self.question}\nSolve it step by step, one step per line, "
                         "and end with 'The answer is ...'.")

    def value_prompt(self, state: str) -> Prompt:
        return self.wrap(f"Question: {self.question}\nPartial solution:\n{state}\n"
                         "Can this partial solution still reach the correct answer? "
                         "End with one word on the last line: sure, likely or impossible.")

    def vote_prompt(self, states: Sequence[str]) -> Prompt:
        choices = "\n".join(f"Choice {i}:\n{s}" for i, s in enumerate(states, 1))
        return self.wrap(f"Question: {self.question}\n{choices}\n"
                         "Which choice is most promising? End with 'The best choice is N'.")

    def parse_proposals(self, text: str) -> list[str]:
        return [re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", line) for line in lines_of(text)]

    def parse_step(self, text: str) -> str:
        found = lines_of(text)
        return found[0] if found else ""

    def value_of(self, state: str, outputs: Sequence[str]) -> float:
        return value_from_outputs(outputs, self.value_map)

    def is_final(self, state: str) -> bool:
        return bool(_FINAL.search(state))

    def answer(self, state: str) -> str:
        return extract_answer(state, LOOP_RULE) or ""


class ArithmeticTask(Task):
    """Evaluate a small expression step by step; exact verifier and process reward.

    A step is a line ``a op b = c``; the final line is ``Answer: <value>``.

    Examples
    --------
    >>> t = ArithmeticTask("(3 + 5) * 2", 16)
    >>> t.process_reward(t.question, "3 + 5 = 8\\n"), t.process_reward(t.question, "3 + 5 = 9\\n")
    (1.0, 0.0)
    >>> t.verify("3 + 5 = 8\\n8 * 2 = 16\\nAnswer: 16\\n")
    True
    """

    def __init__(self, expression: str, value: int, steps: int | None = None):
        super().__init__(question=f"Compute {expression}", steps=steps or expression.count(" ") // 2 + 1,
                         chat=False)
        self.expression, self.value = expression, value

    def sample_prompt(self, state: str) -> Prompt:
        return (f"Compute (7 - 2) * 3 step by step.\n7 - 2 = 5\n5 * 3 = 15\nAnswer: 15\n\n"
                f"{self.question} step by step.\n{state}")

    def propose_prompt(self, state: str) -> Prompt:
        return self.sample_prompt(state)

    def solve_prompt(self) -> Prompt:
        return self.sample_prompt("")

    def value_prompt(self, state: str) -> Prompt:
        return (f"Is every step correct? Answer sure, likely or impossible.\n"
                f"Steps: 2 + 2 = 4\nsure\nSteps: 3 * 3 = 10\nimpossible\n"
                f"Steps: {' / '.join(lines_of(state))}\n")

    def is_final(self, state: str) -> bool:
        return any(line.lower().startswith("answer") for line in lines_of(state))

    def verify(self, state: str) -> bool:
        """True when the state ends with the right ``Answer:`` and every step is right."""
        return self.is_final(state) and self.answer(state) == str(self.value) and \
            self.process_reward(self.question, state) == 1.0

    def process_reward(self, question: str, partial: str) -> float:
        """1.0 when every ``a op b = c`` step is arithmetically right, else 0.0."""
        for line in lines_of(partial):
            if line.lower().startswith("answer"):
                continue
            match = re.fullmatch(r"(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+(?:\.\d+)?)", line)
            if match is None or _apply(*match.group(1, 2, 3)) != Fraction(match.group(4)):
                return 0.0
        return 1.0


def _apply(a: str, op: str, b: str) -> Fraction | None:
    x, y = Fraction(a), Fraction(b)
    if op == "/" and y == 0:
        return None
    return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else None}[op]


def arithmetic_tasks(n: int = 10, seed: int = 0, operations: int = 2) -> list[ArithmeticTask]:
    """``n`` procedural expressions of ``operations`` binary ops on 1..9 (integer results).

    Examples
    --------
    >>> [t.expression for t in arithmetic_tasks(2, seed=1)]  # doctest: +SKIP
    ['(3 + 9) * 2', '(8 - 6) + 4']
    """
    rng = random.Random(seed)
    tasks = []
    while len(tasks) < n:
        expr, value = str(rng.randint(1, 9)), Fraction(0)
        value = Fraction(expr)
        for _ in range(operations):
            op, b = rng.choice("+-*"), rng.randint(1, 9)
            expr, value = f"({expr} {op} {b})", _apply(str(value), op, str(b))  # type: ignore[arg-type]
        tasks.append(ArithmeticTask(expr[1:-1] if expr.startswith("(") else expr, int(value)))
    return tasks
