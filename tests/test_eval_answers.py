"""Answer extraction rules and checkers (the documented order and cases)."""

from __future__ import annotations

import pytest

from reflectnb.backends.base import GenerationParams
from reflectnb.errors import OptionError
from reflectnb.evaluate.checkers import Numeric, make_checker, to_number
from reflectnb.evaluate.tasks import Item
from reflectnb.strategies.voting import clean
from reflectnb.strategies.voting import extract_answer as extract


@pytest.mark.parametrize("text, expected", [
    ("So 3 + 4 = 7. The answer is 7.", "7"),
    ("The answer is **42**.", "42"),
    ("Final Answer: Paris", "Paris"),
    ("final answer is $-3$", "-3"),
    ("Answer: 12", "12"),
    ("We get \\boxed{\\frac{1}{2}} in the end", "\\frac{1}{2}"),
    ("<answer> 7 </answer>", "7"),
    ("12 apples and then 13 pears", "13"),
    ("it is 1,000", "1,000"),
    ("three quarters: 3/4", "3/4"),
])
def test_auto_extraction_reads_the_committed_answer(text, expected):
    assert extract(text) == expected


@pytest.mark.parametrize("text, expected", [
    # earlier rules win over later ones, wherever they appear in the text
    ("\\boxed{12}. Final Answer: 13", "12"),
    ("Final Answer: 13. Or the answer is 14", "13"),
    ("The answer is 5, with 6 left over", "5, with 6 left over"),
    ("<answer>9</answer> \\boxed{8}", "9"),
])
def test_auto_extraction_follows_the_documented_order(text, expected):
    assert extract(text) == expected


@pytest.mark.parametrize("text, expected", [("The answer is 7. Because 3+4=7", "7"), ("x = 3/4", "3/4")])
def test_votes_scores_trees_and_debates_read_the_same_answer(text, expected):
    """The two cases of issue #15: every reader of answers goes through one extractor."""
    from reflectnb.backends.scripted import ScriptedBackend
    from reflectnb.evaluate.methods import parse_method, run_item
    from reflectnb.evaluate.tasks import load_tasks
    from reflectnb.strategies import debate_du
    from reflectnb.strategies.tree import ArithmeticTask, Task, self_consistency
    from reflectnb.trace import ListRecorder

    tasks = load_tasks([{"question": "q", "answer": expected}])
    scored = run_item(parse_method("baseline"), ScriptedBackend([text]), tasks, tasks.items[0],
                      GenerationParams(), ListRecorder()).round_answers
    voted = debate_du(ScriptedBackend([text]), "q", n_agents=1, rounds=1).answer
    tree = self_consistency(ScriptedBackend([text] * 3), "q", n=3).answer
    task_answers = [Task("q").answer(text), ArithmeticTask("3 + 4", 7).answer(text)]
    assert (extract(text), scored, voted, tree, task_answers) == (expected, [expected], expected, expected,
                                                                    [expected, expected])


def test_the_built_in_rules_version_is_part_of_the_eval_key():
    from reflectnb.evaluate.identity import eval_key
    from reflectnb.evaluate.tasks import load_tasks
    from reflectnb.strategies.voting import RULES_VERSION

    key = eval_key(load_tasks([{"question": "q", "answer": "1"}]), "scripted", {})
    assert (key["extract"], key["extract_rules"]) == ("auto", RULES_VERSION)


@pytest.mark.parametrize("text, expected", [("Answer: **Paris**!", "Paris"), ("The answer is 7.```", "7"),
                                            ("so \\boxed{x^2} and then", "x^2"), ("the answer is 12;", "12")])
def test_cleaning_strips_markdown_and_trailing_punctuation(text, expected):
    assert extract(text) == expected


def test_loops_fall_back_to_the_last_line_where_evaluations_count_no_answer():
    text = "I would say\nParis, of course"
    assert (extract(text), extract(text, "auto_or_last_line")) == (None, "Paris, of course")
    assert extract("The answer is 7. Because 3+4=7", "auto_or_last_line") == "7"


def test_the_last_match_of_a_rule_wins():
    assert extract("The answer is 3.\nWait, no.\nThe answer is 4.") == "4"


@pytest.mark.parametrize("text", ["", "I do not know", "   \n  ", None, "The answer is **.**"])
def test_text_without_an_answer_is_unparsed(text):
    assert extract(text) is None


def test_named_rules_and_own_functions():
    assert extract("x is 3\nso y\n", "last_line") == "so y"
    assert extract("the answer is 5 and 6", "last_number") == "6"
    assert extract("ANS=abc", lambda t: t.split("=")[1]) == "abc"


def test_unknown_rule_lists_the_known_ones():
    with pytest.raises(OptionError, match="unknown answer extraction rule 'first_word'.*boxed"):
        extract("x", "first_word")


def test_clean_strips_emphasis_math_quotes_and_a_period():
    assert clean(" **$42$**. ") == "42"
    assert clean("'Paris'.") == "Paris"


def item(answer):
    return Item("i", "q", answer)


@pytest.mark.parametrize("predicted, gold, score", [("5.0", "5", 1.0), ("1,000", "1000", 1.0), (" Paris. ", "paris", 1.0),
                                                     ("6", "5", 0.0)])
def test_exact_checker_compares_normalised_answers(predicted, gold, score):
    assert make_checker("exact")(predicted, item(gold)) == score


def test_numeric_checker_tolerance():
    assert make_checker("numeric:0.01")("3.141", item("3.14159")) == 1.0
    assert make_checker("numeric")("3.141", item("3.14159")) == 0.0
    assert Numeric(rel_tol=0.1)("105", item(100)) == 1.0
    assert make_checker("numeric")("three", item("3")) == 0.0


def test_numeric_checker_needs_a_numeric_gold_answer():
    with pytest.raises(OptionError, match="gold answer of item 'i'"):
        make_checker("numeric")("3", item("three"))


def test_numbers_are_read_from_common_spellings():
    assert [to_number(s) for s in ["1,000", "$3.50", "75%", "3/4", "-2", "x", "1/0"]] == \
        [1000.0, 3.5, 75.0, 0.75, -2.0, None, None]


def test_regex_checker_treats_the_gold_answer_as_a_pattern():
    check = make_checker("regex")
    assert check("Paris, France", item(r"paris(, france)?")) == 1.0
    assert check("Lyon", item(r"paris(, france)?")) == 0.0


def test_function_checker_gets_predicted_and_gold():
    seen = []
    check = make_checker(lambda p, g: seen.append((p, g)) or p == g)
    assert check("4", item("4")) == 1.0 and seen == [("4", "4")]
    assert make_checker(lambda p, g: 0.5)("4", item("4")) == 0.5


def test_function_checker_must_return_a_bool_or_number():
    with pytest.raises(TypeError, match="must return a bool or a number"):
        make_checker(lambda p, g: "yes")("4", item("4"))


@pytest.mark.parametrize("spec, match", [("fuzzy", "unknown checker 'fuzzy'"), ("numeric:-1", "tolerance must be"),
                                         (42, "must be one of")])
def test_bad_checker_specs(spec, match):
    with pytest.raises(OptionError, match=match):
        make_checker(spec)
