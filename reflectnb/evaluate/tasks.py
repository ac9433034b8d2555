"""Task sets: items with gold answers, a checker and an answer extraction rule.

Contract
--------
A :class:`TaskSet` is a name, a list of :class:`Item` (``id`` unique within
the set, ``question``, gold ``answer``), a checker (see
:mod:`reflectnb.evaluate.checkers`) and an extraction rule (see
:mod:`reflectnb.strategies.voting`). :func:`load_tasks` makes one from

* ``"rg:<dataset>"`` — a `reasoning-gym <https://github.com/open-thought/reasoning-gym>`_
  procedural dataset (generated locally from ``seed``; nothing is downloaded),
  scored by the dataset's own ``score_answer``;
* a JSONL file path, a pandas DataFrame, or a list of dicts, with a question
  column, an answer column and an optional id column (default: the row number).

An empty task set is an :class:`~reflectnb.errors.OptionError`; so are missing
columns and duplicate ids.

Non-goals: downloading benchmarks; few-shot prompt construction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from reflectnb.errors import OptionError
from reflectnb.evaluate.checkers import ItemChecker, make_checker
from reflectnb.strategies.voting import Extractor, resolve_rule

INSTRUCTION = "End with a line 'The answer is ...'."


@dataclass
class Item:
    """One question with its gold answer (``metadata`` travels with it)."""

    id: str
    question: str
    answer: Any
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskSet:
    """Items plus how to read and check their answers.

    ``instruction`` is appended to the question for methods whose own prompt
    does not already ask for a final-answer line (baseline, self-consistency,
    reflect).
    """

    name: str
    items: list[Item]
    checker: ItemChecker
    extract: str | Extractor = "auto"
    instruction: str = INSTRUCTION

    def __post_init__(self) -> None:
        if not self.items:
            raise OptionError(f"task set {self.name!r} has no items; give at least one question with an answer")
        ids = [item.id for item in self.items]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise OptionError(f"task set {self.name!r} has duplicate item ids {duplicates[:5]}; ids must be unique")
        resolve_rule(self.extract)

    def prompt(self, item: Item) -> str:
        """The question with the answer-format instruction."""
        return f"{item.question}\n\n{self.instruction}" if self.instruction else item.question

    def fingerprint(self) -> str:
        """A short hash of the name, ids, questions and answers (part of the default eval id)."""
        digest = hashlib.sha256(self.name.encode())
        for item in self.items:
            digest.update(json.dumps([item.id, item.question, str(item.answer)]).encode())
        return digest.hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.items)


def load_tasks(source: Any, *, n: int | None = None, seed: int = 0, question: str = "question",
               answer: str = "answer", id: str | None = "id", checker: Any = "exact",
               extract: str | Extractor = "auto", name: str | None = None, **config: Any) -> TaskSet:
    """A :class:`TaskSet` from ``"rg:<dataset>"``, a JSONL path, a DataFrame or a list of dicts.

    Parameters
    ----------
    source : str, Path, DataFrame, list of dict or TaskSet
    n : int, optional
        How many items (reasoning-gym: how many to generate, default 10; others: the first ``n``).
    seed : int
        reasoning-gym generation seed.
    question, answer, id : str
        Column names (``id=None`` or a missing id column numbers the rows).
    checker : str or callable
        See :func:`~reflectnb.evaluate.checkers.make_checker` (reasoning-gym uses its own scorer).
    extract : str or callable
        See :func:`~reflectnb.strategies.voting.extract_answer`.
    config :
        Extra reasoning-gym dataset options (e.g. ``min_terms=2``).

    Examples
    --------
    >>> tasks = load_tasks([{"question": "2+2?", "answer": "4"}])
    >>> tasks.items[0].id, tasks.checker
    ('0', exact)
    """
    if isinstance(source, TaskSet):
        return source
    if isinstance(source, str) and source.startswith(("rg:", "reasoning_gym:", "reasoning-gym:")):
        return from_reasoning_gym(source.partition(":")[2], n=10 if n is None else n, seed=seed,
                                  extract=extract, **config)
    if config:
        raise OptionError(f"options {sorted(config)} only apply to reasoning-gym task sets ('rg:<dataset>')")
    rows, default_name = _rows(source)
    rows = rows[:n] if n is not None else rows
    items = [_item(row, i, question, answer, id) for i, row in enumerate(rows)]
    return TaskSet(name or default_name, items, make_checker(checker), extract)


def _rows(source: Any) -> tuple[list[dict[str, Any]], str]:
    if isinstance(source, (str, Path)):
        return _jsonl(Path(source)), Path(source).stem
    if hasattr(source, "to_dict") and hasattr(source, "columns"):
        return source.to_dict("records"), "dataframe"
    if isinstance(source, Iterable) and not isinstance(source, (bytes, dict)):
        rows = list(source)
        if all(isinstance(r, dict) for r in rows):
            return rows, "records"
    raise OptionError(f"cannot read tasks from a {type(source).__name__}; give 'rg:<dataset>', a JSONL path, "
                      "a pandas DataFrame or a list of dicts")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise OptionError(f"task file {str(path)!r} does not exist; give a JSONL file (one JSON object a line) "
                          "or 'rg:<dataset>' for a reasoning-gym task")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise OptionError(f"{path}: line {number} is not JSON ({exc.msg})") from None
    return rows


def _item(row: dict[str, Any], index: int, question: str, answer: str, id_column: str | None) -> Item:
    for column in (question, answer):
        if column not in row:
            raise OptionError(f"task row {index} has no {column!r} field (it has {sorted(row)}); "
                              f"name the columns with question=..., answer=...")
    ident = row.get(id_column) if id_column else None
    metadata = {k: v for k, v in row.items() if k not in (question, answer, id_column)}
    return Item(str(index if ident is None else ident), str(row[question]), row[answer], metadata)


def from_reasoning_gym(dataset: str, *, n: int = 10, seed: int = 0, extract: str | Extractor = "auto",
                       **config: Any) -> TaskSet:
    """``n`` items of a reasoning-gym dataset, generated locally, scored by its ``score_answer``.

    Examples
    --------
    >>> tasks = from_reasoning_gym("basic_arithmetic", n=3, seed=42)   # doctest: +SKIP
    >>> tasks.items[0].question                                         # doctest: +SKIP
    'Calculate -5 * -6.'
    """
    rg = _import_reasoning_gym()
    try:
        data = rg.create_dataset(dataset, size=n, seed=seed, **config)
    except (KeyError, ValueError, TypeError) as exc:
        raise OptionError(f"cannot make reasoning-gym dataset {dataset!r} ({exc}); list the names with "
                          "reflectnb.evaluate.reasoning_gym_datasets()") from None
    items = [Item(f"{dataset}-{seed}-{i}", entry["question"], entry["answer"], {"entry": entry})
             for i, entry in enumerate(data)]
    return TaskSet(f"rg:{dataset}", items, GymScorer(data), extract)


class GymScorer(ItemChecker):
    """reasoning-gym's own ``score_answer(answer, entry)`` as a checker."""

    name = "reasoning-gym"

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __call__(self, predicted: str, item: Item) -> float:
        return float(self.dataset.score_answer(answer=predicted, entry=item.metadata["entry"]))


def reasoning_gym_datasets() -> list[str]:
    """The names of the reasoning-gym datasets installed."""
    return sorted(_import_reasoning_gym().factory.DATASETS)


def _import_reasoning_gym() -> Any:
    try:
        import reasoning_gym
        import reasoning_gym.factory  # noqa: F401
    except ImportError:
        raise OptionError("reasoning-gym task sets need the 'reasoning-gym' package: pip install reasoning-gym") \
            from None
    return reasoning_gym


