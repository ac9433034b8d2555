"""Fuzzing every magic's option line and cell, and the schedule grammar (issue #13, item 3).

Property: whatever the user types, a magic either runs or answers with one
readable error (an IPython ``UsageError``, one line, or a reflectnb error);
never another exception, never a hang. Inputs are built from each magic's own
option flags, values that have broken magics before (``nan``, ``1e999``,
``1000000000``, ``''``, ``1abc``, ``{d[k]}``...) and random text.

Each case is bounded: the default model is a scripted one held in the variable
``bot`` (a line that parses runs instantly), ``--no-stream --no-trace`` are added
so no widget or store work hides a slow path, and hypothesis gives every example a
deadline. The example budget is fixed and derandomized in CI (``EXAMPLES`` per
magic); ``REFLECTNB_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_magics.py`` runs a
larger, random one. What was tried and how it ended is written to
``build/reliability/magics.json`` and ``schedules.json`` (``tests/reliability_counts.py``).

Read-only SQL semantics are fuzzed with the store's tests; here ``%reflect_sql``
gets random options around a fixed ``SELECT``.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from magic_shell import clean_shell
from reliability_counts import record

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.decoding.parse import parse_schedule
from reflectnb.decoding.schedules import KINDS, Schedule
from reflectnb.errors import ReflectnbError
from reflectnb.magics.evaluate import reflect_eval_parser
from reflectnb.magics.options import PARSERS
from reflectnb.magics.sql import parser as sql_parser

ON_DEMAND = "REFLECTNB_FUZZ_EXAMPLES" in os.environ  # then random examples; in CI the same ones each run
EXAMPLES = int(os.environ.get("REFLECTNB_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), derandomize=not ON_DEMAND, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])

LARGER = "REFLECTNB_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_magics.py"  # the on-demand budget, for the docs
REPLY = "Step 1: 2 + 2 = 4. The answer is 4. STOP"
VALUES = ["0", "1", "2", "3.5", "-1", "nan", "inf", "-inf", "1e999", "1000000000", "99999999999999999999",
          "''", '""', "x", "res", "1abc", "for", "bot", "n", "d", "du", "mad", "bfs", "mcts", "best_of_n",
          "majority", "judge", "full", "last", "always", "if_wrong", "'cyclic(amplitude=5, period=600)'",
          "'cyclic(shift=5)'", "'constant(nan)'", "'tip(mode=x)'", "bot,bot", "bot,,bot", "','", "'a b'",
          "'{d[k]}'", "scripted:x", "--", "-", "'\n'", "\"'\"", "'\\'", "é", "\t"]
CELLS = ["What is 2 + 2?", "4 9 10 13", "4, 9, 10, 13", "", "   ", "{", "}", "{}", "{n}", "{d[a]}", "{d[k]}",
         "{n.x}", "{n:zz}", "{n!q}", "{n:{n}}", "{{literal}}", "{missing}", "{0}", "{d[a]:>{n}}", "{n[0]}"]
WORD = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
REMOTE = ("hf:", "openai:", "http")  # a hub id or a server would leave this machine; scripted models only


GOOD_BY_TYPE = {"positive_int": ["1", "2"], "non_negative_float": ["0", "0.7"], "token_count": ["8"],
                "seed_value": ["0", "42"], "python_name": ["res", "out"], "int": ["1"],
                "schedule_text": ["'constant(1)'", "none"]}
GOOD_BY_FLAG = {"--model": ["bot"], "--models": ["bot,bot", "bot,bot,bot", "bot"], "--critic": ["bot"],
                "--templates": ["T"], "--verifier": ["check"], "--tone": ["strict"], "--checker": ["exact", "lenient"],
                "--extract": ["auto", "last_number"], "--eval-id": ["e1"], "--chart": ["bar", "bar:n,n"],
                "--methods": ["baseline", "'baseline, reflect(rounds=1)'", "'self_consistency(samples=2)'"]}


def option_line(parser, extra_values: list[str] = ()) -> st.SearchStrategy[str]:
    """Random option lines from the magic's own parser: flags with fitting or risky values, and random words.

    A flag that takes a value gets one that fits it (its choices, a small number, the
    variable ``bot``) or a risky one from :data:`VALUES`, so many lines parse and run
    and the rest probe the refusals.
    """
    values = VALUES + list(extra_values)
    pairs = []
    for action in parser._actions:
        for flag in action.option_strings:
            if action.nargs == 0:
                pairs.append(st.just(flag))
                continue
            long_flag = max(action.option_strings, key=len)
            good = [str(c) for c in action.choices or ()] or GOOD_BY_FLAG.get(long_flag) or \
                GOOD_BY_TYPE.get(getattr(action.type, "__name__", ""), ["x"])
            pairs.append(st.tuples(st.just(flag), st.sampled_from(good) | st.sampled_from(values)).map(" ".join))
    pair = st.one_of(pairs)
    token = st.one_of(pair, pair, pair, pair, st.sampled_from(values), WORD)
    return st.lists(token, max_size=4).map(" ".join).filter(lambda line: not any(r in line for r in REMOTE))


CELL = st.one_of(st.sampled_from(CELLS), WORD, st.lists(st.sampled_from(CELLS), max_size=3).map("\n".join))


@pytest.fixture()
def counted(tmp_path, monkeypatch):
    """A counter of outcomes per magic, written to build/reliability/magics.json when the test ends."""
    monkeypatch.chdir(tmp_path)  # anything a fuzzed line writes (a --path database) lands here
    monkeypatch.setenv("REFLECTNB_TRACES", str(tmp_path / "traces.duckdb"))
    counts: dict[str, Counter] = {}
    yield counts
    for part, c in counts.items():
        record("magics", part=part, tried=sum(c.values()), ran=c["ran"], clear_error=c["clear_error"],
               other=c["other"], larger_budget=LARGER)


def attempt(counts: Counter, run, one_line: bool = True) -> None:
    """Run one fuzzed input in a clean shell; count how it ended; fail on anything but a clear error."""
    with clean_shell() as shell:
        shell.user_ns.update(bot=ScriptedBackend(lambda prompt, i: REPLY), d={"a": 1}, n=3,
                             qs=[{"question": "What is 2 + 2?", "answer": "4"}], T={"draft": "Answer: {task}"},
                             lenient=lambda predicted, gold: True, check=lambda text: True)
        shell.run_line_magic("config", "ReflectMagics.model = 'scripted:unused'")
        try:
            run(shell)
        except (UsageError, ReflectnbError) as exc:
            counts["clear_error"] += 1
            message = str(exc)
            assert message.strip(), "an empty error message"
            assert not one_line or "\n" not in message, f"not one line: {message!r}"
            return
        except BaseException:
            counts["other"] += 1
            raise
        counts["ran"] += 1


def with_model(line: str) -> str:
    """The line plus ``-m bot`` unless it names models itself, and no live view or trace."""
    words = line.split()
    model = "" if {"-m", "--model", "--models"} & set(words) else " -m bot"
    return f"{line}{model} --no-stream --no-trace"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("magic", ["reflect", "critique", "debate", "tree"])
def test_every_cell_magic_line_and_cell_either_runs_or_is_one_clear_line(counted, magic):
    counts = counted.setdefault(f"%%{magic}", Counter())

    @FUZZ
    @given(line=option_line(PARSERS[magic]()), cell=CELL)
    def check(line, cell):
        attempt(counts, lambda shell: shell.run_cell_magic(magic, with_model(line), cell))

    check()


@pytest.mark.timeout(300)
def test_reflect_eval_lines_either_run_or_are_one_clear_line(counted):
    counts = counted.setdefault("%reflect_eval", Counter())
    sources = ["qs", "nope", "missing.jsonl", "n", "d", "rg:no_such_dataset"]
    methods = ["baseline", "'baseline, reflect(rounds=1)'", "'self_consistency(samples=2)'", "reflexion",
               "'reflect(round=2)'", "'baseline@constant(2)'", "'debate(agents=2, rounds=1)'", "critique",
               "'baseline,baseline'", "exact", "numeric:0.01", "numeric:x", "lenient", "last_number"]

    @FUZZ
    @given(source=st.sampled_from(sources) | st.just("qs") | WORD,
           line=option_line(reflect_eval_parser(), methods))
    def check(source, line):
        attempt(counts, lambda shell: shell.run_line_magic("reflect_eval", with_model(f"{source} {line}")))

    check()


@pytest.mark.timeout(300)
def test_reflect_sql_options_either_run_or_are_a_clear_error(counted, tmp_path):
    counts = counted.setdefault("%reflect_sql", Counter())
    extra = ["bar", "bar:n,n", "pie", "line:x", str(tmp_path / "other.duckdb")]
    GOOD_BY_FLAG["--path"] = [str(tmp_path / "traces.duckdb")]  # never a random path: reads must not litter

    @FUZZ
    @given(line=option_line(sql_parser(), extra).filter(lambda line: "--path" not in line or str(tmp_path) in line),
           as_cell=st.booleans())
    def check(line, as_cell):
        def run(shell):
            if as_cell:
                return shell.run_cell_magic("reflect_sql", line, "SELECT 1 AS n")
            return shell.run_line_magic("reflect_sql", f"{line} SELECT 1 AS n")

        attempt(counts, run, one_line=False)  # DuckDB's own messages may point at a column on a second line

    check()


@pytest.mark.timeout(120)
def test_the_status_magic_either_runs_or_refuses_arguments(counted):
    counts = counted.setdefault("%reflectnb", Counter())

    @FUZZ
    @given(line=st.one_of(st.just(""), st.just("  "), option_line(PARSERS["reflect"]())))
    def check(line):
        attempt(counts, lambda shell: shell.run_line_magic("reflectnb", line))

    check()


NUMBERS = ["0", "1", "-1", "2.5", "1e999", "-1e999", "1e308", "10**400", "600", "0.25", "True", "None", "1j",
           "nan", "'x'", "[(0, 8192)]", "[(5, 1)]", "[(0, 1e999)]", "[]", "[[[0]]]", "((0, 1),)", "{}", "paper",
           "cyclicreflex", "99999999999999999999999999"]
NAMES = sorted({f.name for kind in KINDS.values() for f in kind.__dataclass_fields__.values()})
ARG = st.one_of(st.sampled_from(NUMBERS), st.tuples(st.sampled_from(NAMES + ["bogus"]), st.sampled_from(NUMBERS))
                .map("=".join))
SCHEDULE = st.one_of(
    st.tuples(st.sampled_from([*KINDS, "none", "Cyclic", "bogus"]), st.lists(ARG, max_size=4))
    .map(lambda call: f"{call[0]}({', '.join(call[1])})"),
    st.sampled_from([*KINDS, "none", "", "cyclic(", "cyclic)", "cyclic(**{})", "cyclic(*[])", "a.b()", "x" * 500]),
    WORD, st.text(max_size=40))


@pytest.mark.timeout(120)
def test_every_schedule_string_parses_or_is_one_option_error():
    counts = Counter()

    @settings(FUZZ, max_examples=EXAMPLES * 10)
    @given(text=SCHEDULE)
    def check(text):
        try:
            schedule = parse_schedule(text)
        except ReflectnbError as exc:
            counts["clear_error"] += 1
            assert str(exc).strip()
            return
        except BaseException:
            counts["other"] += 1
            raise
        counts["ran"] += 1
        assert schedule is None or isinstance(schedule, Schedule)
        if schedule is not None:  # what parses must round-trip and give finite biases
            assert parse_schedule(repr(schedule)) == schedule
            values = schedule.value([0, 1, 599, 600, 10_000])
            assert all(abs(v) < float("inf") for v in values)

    try:
        check()
    finally:
        record("schedules", part="parse_schedule", tried=sum(counts.values()), parsed=counts["ran"],
               clear_error=counts["clear_error"], other=counts["other"], larger_budget=LARGER)
