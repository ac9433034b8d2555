"""Schedule strings (what ``%%reflect --schedule`` passes): parsing, round-trips, safe rejection."""

from __future__ import annotations

import pytest

from reflectnb.decoding.parse import parse_schedule
from reflectnb.decoding.schedules import Constant, Cosine, Cyclic, Linear, Silver, Tip
from reflectnb.errors import OptionError


@pytest.mark.parametrize("text,expected", [
    ("cyclic(amplitude=5, period=600)", Cyclic(amplitude=5, period=600)),
    ("constant(2)", Constant(2)),
    ("constant(-3, windows=[(0, 600)])", Constant(-3, windows=((0, 600),))),
    ("linear(start=2, end=-2, span=500)", Linear(2, -2, 500)),
    ("cosine(start=2, end=0, span=1000)", Cosine(2, 0, 1000)),
    ("silver(rho=2, modulus=64)", Silver(2, 64)),
    ("tip(alpha=3, beta=600, mode=paper)", Tip(3, 600, "paper")),
    ("tip(alpha=3, beta=600, mode='cyclicreflex')", Tip(3, 600, "cyclicreflex")),
    ("  Cyclic ", Cyclic()),
    ("cyclic(5, 1200, 0.25, windows=None)", Cyclic(5, 1200, 0.25, windows=None)),
])
def test_schedule_strings_parse_to_the_schedule_they_name(text, expected):
    assert parse_schedule(text) == expected


@pytest.mark.parametrize("text", ["none", "None", "off", ""])
def test_none_means_no_schedule(text):
    assert parse_schedule(text) is None


@pytest.mark.parametrize("schedule", [Cyclic(), Cyclic(3, 600, 0.5, windows=[(0, 100), (200, 300)]),
                                      Cyclic(windows=None), Constant(2.5), Constant(-3, [(0, 600)]),
                                      Linear(2, -2, 500), Cosine(1, 0, 10, windows=[(5, 9)]), Silver(3, 32),
                                      Tip(1.5, 100, "cyclicreflex")], ids=repr)
def test_repr_round_trips_through_the_parser(schedule):
    assert parse_schedule(repr(schedule)) == schedule


def test_schedules_pass_through_unchanged():
    wave = Cyclic()
    assert parse_schedule(wave) is wave and parse_schedule(None) is None


@pytest.mark.parametrize("text,match", [
    ("wobble(1)", r"unknown kind 'wobble'.*Kinds: none, constant, linear, cosine, cyclic, silver, tip"),
    ("cyclic(bogus=1)", r"cyclic has no argument 'bogus' \(it takes amplitude, period, shift, windows\)"),
    ("cyclic(1, 2, 3, 4, 5)", "cyclic takes at most 4 values"),
    ("cyclic(1, amplitude=2)", "'amplitude' given twice"),
    ("constant(2", r"syntax error.*Grammar: schedule := none \| KIND"),
    ("cyclic(period=600*2)", "'600 \\* 2' is not a literal value"),
    ("__import__('os').system('true')", r"expected KIND or KIND\(\.\.\.\)"),
    ("cyclic(**{'period': 1})", "'\\*\\*' is not allowed"),
    ("constant(*[1])", "'\\*' is not allowed"),
    ("cyclic(period=0)", r"schedule 'cyclic\(period=0\)': `period` must be a positive number, got 0"),
    ("cyclic(amplitude=big)", "`amplitude` must be a finite number, got 'big'"),
    ("cyclic(period=1e999)", "`period` must be a finite number, got inf"),
    ("constant(" + "1," * 300 + ")", "longer than 400 characters"),
])
def test_bad_strings_raise_option_errors_that_say_what_is_wrong(text, match):
    with pytest.raises(OptionError, match=match):
        parse_schedule(text)


def test_parse_errors_show_the_grammar_and_examples():
    with pytest.raises(OptionError) as info:
        parse_schedule("wobble")
    message = str(info.value)
    assert "Grammar:" in message and "cyclic(amplitude=5, period=600)" in message and "tip(alpha=3" in message


def test_non_strings_are_rejected():
    with pytest.raises(OptionError, match="expected a string, got int"):
        parse_schedule(5)  # type: ignore[arg-type]


def test_parsing_a_schedule_string_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from reflectnb.decoding import parse_schedule, ReflectionVocab; "
            "parse_schedule('cyclic(period=600)').value([150]); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
