"""The repetition stop's rules, as a pure function of the generated text."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.repetition import DEFAULT, RepetitionStop, resolve
from reflectnb.errors import OptionError


def test_the_same_line_three_times_in_a_row_is_a_loop():
    text = "Let me check.\nThe answer is 12.\nThe answer is 12.\nThe answer is 12.\n"
    assert DEFAULT.check(text) == "the line 'The answer is 12.' 3 times in a row"


def test_two_repeats_or_an_unfinished_third_line_are_not_yet_a_loop():
    assert DEFAULT.check("The answer is 12.\nThe answer is 12.\n") is None
    assert DEFAULT.check("The answer is 12.\nThe answer is 12.\nThe answer is 1") is None


def test_blank_lines_and_surrounding_spaces_do_not_hide_a_repeated_line():
    assert DEFAULT.check("  12 \n\n12\n\n 12\n") is not None


def test_different_lines_are_not_a_loop():
    assert DEFAULT.check("Step 1: 3+4=7\nStep 2: 7*2=14\nStep 3: 14-2=12\n") is None


def test_a_unit_repeated_four_times_without_line_breaks_is_a_loop():
    text = "So the total is 12. " + "The answer is 12. " * 4
    assert DEFAULT.check(text) == "'The answer is 12.' 4 times in a row"


def test_a_loop_is_found_mid_unit_too():
    assert DEFAULT.check("The answer is 12. " * 4 + "The ans") is not None


def test_short_units_like_laughter_or_rules_never_count():
    assert DEFAULT.check("ha " * 30) is None
    assert DEFAULT.check("-" * 80) is None
    assert DEFAULT.check("1, 1, 1, 1, 1, 1, 1, 1") is None


def test_ordinary_prose_is_not_a_loop():
    text = ("Leaves fall in autumn because trees stop making chlorophyll. The days get shorter, "
            "the tree seals each leaf stem, and the wind does the rest.")
    assert DEFAULT.check(text) is None


def test_the_rules_are_settable():
    assert RepetitionStop(line_repeats=2).check("x = 1\nx = 1\n") is not None
    assert RepetitionStop(loop_repeats=2, min_unit=4).check("abcdabcd") is not None


@pytest.mark.parametrize("kwargs, message", [
    ({"line_repeats": 1}, "RepetitionStop `line_repeats` must be an integer >= 2, got 1"),
    ({"min_unit": True}, "RepetitionStop `min_unit` must be an integer >= 2, got True"),
    ({"min_unit": 50, "max_unit": 20}, "RepetitionStop `max_unit` (20) must be >= `min_unit` (50)"),
])
def test_bad_rules_are_refused_with_the_setting_named(kwargs, message):
    with pytest.raises(OptionError) as err:
        RepetitionStop(**kwargs)
    assert str(err.value) == message


def test_none_means_the_backend_default_and_booleans_switch_it():
    assert resolve(None, default_on=True) is DEFAULT
    assert resolve(None, default_on=False) is None
    assert resolve(False, default_on=True) is None
    assert resolve(True, default_on=False) is DEFAULT
    custom = RepetitionStop(line_repeats=5)
    assert resolve(custom, default_on=False) is custom


def test_generation_params_refuse_a_bad_repetition_stop_and_record_a_good_one():
    with pytest.raises(OptionError) as err:
        GenerationParams(repetition_stop="yes")
    assert str(err.value) == "`repetition_stop` must be True, False, None or a RepetitionStop, got 'yes'"
    recorded = GenerationParams(repetition_stop=RepetitionStop(line_repeats=4)).to_dict()["repetition_stop"]
    assert recorded == {"line_repeats": 4, "loop_repeats": 4, "min_unit": 10, "max_unit": 200}
