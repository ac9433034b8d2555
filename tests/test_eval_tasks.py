"""Task sources: the user's rows (list, DataFrame, JSONL) and reasoning-gym, generated offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reflectnb.errors import OptionError
from reflectnb.evaluate.checkers import Numeric
from reflectnb.evaluate.tasks import INSTRUCTION, TaskSet, from_reasoning_gym, load_tasks

ROWS = [{"id": "a", "question": "2+2?", "answer": "4", "topic": "sum"},
        {"id": "b", "question": "3*3?", "answer": "9", "topic": "product"}]


def test_rows_become_items_with_ids_and_metadata():
    tasks = load_tasks(ROWS)
    assert [(i.id, i.question, i.answer) for i in tasks.items] == [("a", "2+2?", "4"), ("b", "3*3?", "9")]
    assert tasks.items[1].metadata == {"topic": "product"}
    assert tasks.prompt(tasks.items[0]) == f"2+2?\n\n{INSTRUCTION}"


def test_a_dataframe_with_other_column_names_and_no_ids():
    df = pd.DataFrame({"q": ["1+1", "5-2"], "gold": [2, 3]})
    tasks = load_tasks(df, question="q", answer="gold", checker="numeric")
    assert [i.id for i in tasks.items] == ["0", "1"]
    assert tasks.items[1].answer == 3 and isinstance(tasks.checker, Numeric)
    assert tasks.name == "dataframe"


def test_a_jsonl_file_read_up_to_n_items(tmp_path):
    path = tmp_path / "arith.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    tasks = load_tasks(path, n=1)
    assert tasks.name == "arith" and [i.id for i in tasks.items] == ["a"]


def test_a_jsonl_line_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "1", "answer": "1"}\n{oops\n')
    with pytest.raises(OptionError, match="line 2 is not JSON"):
        load_tasks(path)


def test_a_missing_file_says_what_to_give(tmp_path):
    with pytest.raises(OptionError, match="does not exist.*JSONL"):
        load_tasks(str(tmp_path / "nope.jsonl"))


def test_an_empty_task_set_is_refused():
    with pytest.raises(OptionError, match="has no items"):
        load_tasks([])


def test_a_row_without_the_answer_column_is_refused():
    with pytest.raises(OptionError, match="task row 0 has no 'answer' field"):
        load_tasks([{"question": "2+2?", "solution": "4"}])


def test_duplicate_ids_are_refused():
    with pytest.raises(OptionError, match=r"duplicate item ids \['a'\]"):
        load_tasks([ROWS[0], ROWS[0]])


def test_unreadable_sources_are_refused():
    with pytest.raises(OptionError, match="cannot read tasks from a int"):
        load_tasks(42)


def test_reasoning_gym_generates_the_same_items_from_the_same_seed():
    one = from_reasoning_gym("basic_arithmetic", n=3, seed=7)
    two = load_tasks("rg:basic_arithmetic", n=3, seed=7)
    assert [i.question for i in one.items] == [i.question for i in two.items]
    assert one.fingerprint() == two.fingerprint()
    assert [i.id for i in one.items] == ["basic_arithmetic-7-0", "basic_arithmetic-7-1", "basic_arithmetic-7-2"]
    assert from_reasoning_gym("basic_arithmetic", n=3, seed=8).fingerprint() != one.fingerprint()


def test_reasoning_gym_items_are_scored_by_the_dataset_itself():
    tasks = from_reasoning_gym("chain_sum", n=2, seed=1)
    first = tasks.items[0]
    assert tasks.checker(str(first.answer), first) == 1.0
    assert tasks.checker("not a number", first) == 0.0


def test_reasoning_gym_dataset_options_pass_through():
    tasks = load_tasks("rg:chain_sum", n=2, seed=1, min_terms=4, max_terms=4)
    assert all(item.question.count("+") + item.question.count("-") >= 3 for item in tasks.items)


def test_an_unknown_reasoning_gym_dataset_is_refused():
    with pytest.raises(OptionError, match="cannot make reasoning-gym dataset 'no_such_task'"):
        load_tasks("rg:no_such_task")


def test_reasoning_gym_works_offline_without_hub_libraries():
    code = ("import socket, sys\n"
            "def refuse(*a, **k): raise OSError('network is off in this test')\n"
            "socket.socket.connect = refuse\n"
            "from reflectnb.evaluate.tasks import from_reasoning_gym\n"
            "t = from_reasoning_gym('basic_arithmetic', n=2, seed=0)\n"
            "print(len(t.items), 'datasets' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1],
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["2", "False", "False"]


def test_a_task_set_built_directly_is_validated():
    with pytest.raises(OptionError, match="unknown answer extraction rule"):
        TaskSet("t", load_tasks(ROWS).items, load_tasks(ROWS).checker, extract="nope")
