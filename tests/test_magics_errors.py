"""Every mistake in a magic line or cell is one readable line, through a real IPython shell.

Each case named in issue #13 (item 2) has a test here with its message pinned: a
failing cell placeholder, templates of the wrong type, NaN / infinite
temperatures, a game-of-24 cell that is not four numbers, an ``-o`` that is not a
Python name, options the chosen method would ignore, model variables for
``--critic`` / ``--models``, budgets far too large, and a help that IPython finds.
Scripted models make every run instant; nothing here loads the real model.
"""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError
from magic_shell import clean_shell

from reflectnb.backends.base import GenerationParams
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError

QUICK = "-m 'scripted:a draft|STOP' --no-stream --no-trace"


@pytest.fixture()
def ip(trace_file):
    with clean_shell() as shell:
        shell.user_ns.update(d={"a": 1}, n=3, bot=ScriptedBackend(lambda prompt, i: "The answer is 4. STOP"))
        yield shell


def usage_error(ip, magic: str, line: str, cell: str | None = None) -> str:
    """The one-line message a magic answers with (the test fails if it runs or raises anything else)."""
    with pytest.raises(UsageError) as caught:
        if cell is None:
            ip.run_line_magic(magic, line)
        else:
            ip.run_cell_magic(magic, line, cell)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("cell, message", [
    ("Use {d[missing]}", "the cell's placeholder {d[missing]} failed (KeyError: 'missing'); fix it, "
                         "or write {{ and }} for literal braces"),
    ("Use {n.attr}", "the cell's placeholder {n.attr} failed (AttributeError: 'int' object has no attribute 'attr')"),
    ("Use {n[0]}", "the cell's placeholder {n[0]} failed (TypeError: 'int' object is not subscriptable)"),
    ("Use {n:zz}", "the cell's placeholder {n:zz} failed (ValueError: Unknown format code 'z' for object of type 'int')"),
    ("Use {n!q}", "the cell's placeholder {n!q} failed (ValueError: Unknown conversion specifier q)"),
    ("Use {}", "the cell has an empty placeholder {}; name a Python variable, e.g. {task}"),
])
def test_a_cell_placeholder_that_fails_is_one_line_naming_the_placeholder(ip, cell, message):
    assert usage_error(ip, "reflect", QUICK, cell).startswith(message)


def test_a_placeholder_whose_object_raises_in_format_is_one_line(ip):
    class Grumpy:
        def __format__(self, spec):
            raise RuntimeError("no\nformatting")

    ip.user_ns["g"] = Grumpy()
    assert usage_error(ip, "reflect", QUICK, "{g}") == ("the cell's placeholder {g} failed (RuntimeError: no "
                                                        "formatting); fix it, or write {{ and }} for literal braces")


@pytest.mark.parametrize("value, message", [
    ("'just text'", "templates for reflect must be a dict of template name -> text, e.g. {'system': '...'}; got str"),
    ("[1, 2]", "templates for reflect must be a dict of template name -> text, e.g. {'system': '...'}; got list"),
    ("{'draft': 5}", "template 'draft' for reflect must be a str, got int"),
    ("{1: 'x', 'b': 'y'}", "unknown template 'b' for reflect; known: "),
])
def test_templates_of_the_wrong_type_are_one_line(ip, value, message):
    ip.run_cell(f"T = {value}")
    assert usage_error(ip, "reflect", QUICK + " --templates T", "Write a haiku.").startswith(message)


@pytest.mark.parametrize("magic", ["reflect", "critique", "debate", "tree"])
@pytest.mark.parametrize("value", ["nan", "inf", "Infinity", "1e999", "NaN"])
def test_nan_and_infinite_temperatures_are_refused_by_every_loop_magic(ip, magic, value):
    assert usage_error(ip, magic, f"{QUICK} -t {value}", "x") == (
        f"%%{magic}: argument -t/--temperature: must be a finite number, got '{value}'  "
        f"(see `%%{magic}?` for the options)")


def test_nan_temperature_is_refused_by_reflect_eval_and_by_config(ip):
    ip.user_ns["qs"] = [{"question": "2+2?", "answer": "4"}]
    assert "must be a finite number, got 'nan'  (see `%reflect_eval?`" in usage_error(ip, "reflect_eval", "qs -t nan")
    ip.run_line_magic("config", "ReflectMagics.temperature = float('nan')")
    assert usage_error(ip, "reflect", QUICK, "x") == "`temperature` must be a finite number >= 0, got nan"


@pytest.mark.parametrize("field, value, message", [
    ("temperature", float("nan"), "`temperature` must be a finite number >= 0, got nan"),
    ("temperature", float("inf"), "`temperature` must be a finite number >= 0, got inf"),
    ("top_p", float("nan"), "`top_p` must be a number in (0, 1], got nan"),
    ("top_p", float("inf"), "`top_p` must be a number in (0, 1], got inf"),
    ("top_k", 2.5, "`top_k` must be a positive integer or None, got 2.5"),
])
def test_generation_params_refuse_nan_and_infinite_settings(field, value, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        GenerationParams(**{field: value})


@pytest.mark.parametrize("cell", ["make 24 please", "1 2 3", "1 2 3 4 5", "1 2 x 4", "1.5 2 3 4", "-1 2 3 4"])
def test_game24_refuses_a_cell_that_is_not_four_whole_numbers(ip, cell):
    assert usage_error(ip, "tree", QUICK + " --game24", cell) == (
        f"the game of 24 needs four whole numbers such as '4 9 10 13', got {cell!r}")


def test_game24_takes_four_numbers_with_commas(ip):
    ip.run_cell_magic("tree", "-m bot --method best_of_n -n 1 --no-stream --no-trace --game24 -o res", "4, 9, 10, 13")
    assert ip.user_ns["res"].nodes[0].text == "4 9 10 13"


@pytest.mark.parametrize("name", ["1abc", "for", "a-b", "x y", "None"])
def test_output_names_that_are_not_python_variables_are_refused(ip, name):
    assert usage_error(ip, "reflect", f"{QUICK} -o '{name}'", "x") == (
        f"%%reflect: argument -o/--output: must be a Python variable name such as res, got {name!r}  "
        "(see `%%reflect?` for the options)")
    assert name not in ip.user_ns


@pytest.mark.parametrize("line, message", [
    ("--method mad --agents 3", "%%debate: --agents applies to --method du only; MAD has three fixed roles "
                                "(affirmative, negative, moderator): give them models with --models"),
    ("--method mad --aggregator judge", "%%debate: --aggregator applies to --method du only"),
    ("--models ''", "%%debate: --models '' has an empty entry; give comma-separated model names or variables"),
    ("--models bot,,bot", "%%debate: --models 'bot,,bot' has an empty entry"),
    ("--method mad --models bot,bot", "%%debate: --method mad: --models takes 1 model, or 3 (affirmative, negative, "
                                      "moderator); got 2"),
    ("-m bot --models bot,bot", "%%debate: give -m (one model for every agent) or --models (one per agent), not both"),
])
def test_debate_options_the_method_would_ignore_are_refused(ip, line, message):
    assert usage_error(ip, "debate", line + " --no-stream --no-trace", "Is 7 prime?").startswith(message)


def test_reflectnb_refuses_arguments(ip):
    assert usage_error(ip, "reflectnb", "smollm2-135m") == (
        "%reflectnb takes no options, got 'smollm2-135m'; it only shows the status. "
        "Set the model with %config ReflectMagics.model = 'smollm2-135m'")


def test_an_empty_model_is_refused_instead_of_meaning_the_default(ip):
    assert usage_error(ip, "reflect", "-m '' --no-stream", "x").startswith("-m is empty; give a model name")


def test_reflect_eval_refuses_a_schedule_that_no_method_would_take(ip):
    ip.user_ns["qs"] = [{"question": "2+2?", "answer": "4"}]
    assert usage_error(ip, "reflect_eval", "qs -m bot --methods 'baseline@constant(2)' --schedule 'constant(1)'") \
        .startswith("%reflect_eval: --schedule 'constant(1)' would be ignored: every method names its own")


def test_critic_and_models_take_a_python_variable_holding_a_model(ip):
    ip.user_ns["judge"] = ScriptedBackend(lambda prompt, i: "Step 1 is correct. STOP")
    ip.run_cell_magic("critique", "-m bot --critic judge --no-stream --no-trace -o res", "What is 2 + 2?")
    assert {s.generation.model for s in ip.user_ns["res"].steps if s.generation} == {"scripted"}
    assert len(ip.user_ns["judge"].calls) >= 1  # the critic really was the variable's model
    ip.user_ns["a1"] = ScriptedBackend(lambda prompt, i: "The answer is 4")
    ip.user_ns["a2"] = ScriptedBackend(lambda prompt, i: "The answer is 5")
    ip.run_cell_magic("debate", "--models a1,a2,a1 --rounds 1 --no-stream --no-trace -o res", "What is 2 + 2?")
    assert ip.user_ns["res"].votes == {"4": 2, "5": 1}


def test_a_model_option_naming_a_variable_that_is_not_a_model_is_one_line(ip):
    assert usage_error(ip, "critique", QUICK + " --critic n", "x") == (
        "--critic n: the variable 'n' is a int, not a loaded model; use reflectnb.load_model(...) "
        "or give a model name such as smollm2-135m")
    assert usage_error(ip, "debate", "--models bot,n --no-stream", "x").startswith("--models n: the variable 'n' is a int")


@pytest.mark.parametrize("magic, line, message", [
    ("reflect", "--rounds 1000000000", "%%reflect: this run could make about 2,000,000,001 model calls (rounds "
                                       "1,000,000,000: 1 draft + 2 calls per round); lower --rounds, or raise "
                                       "--max-generations"),
    ("critique", "--rounds 5000", "%%critique: this run could make about 10,001 model calls (rounds 5,000: "
                                  "1 answer + 2 calls per round)"),
    ("debate", "--agents 200 --rounds 100", "%%debate: this run could make about 20,001 model calls (rounds 100, "
                                            "agents 200: agents x rounds, + 1 judge); lower --rounds or --agents"),
    ("debate", "--method mad --rounds 4000", "%%debate: this run could make about 12,001 model calls (rounds 4,000: "
                                             "3 roles x rounds, + 1 judge)"),
    ("reflect", "--rounds 10 --max-generations 20", "%%reflect: this run could make about 21 model calls"),
])
def test_budgets_far_too_large_are_refused_with_the_estimate(ip, magic, line, message):
    assert usage_error(ip, magic, f"{QUICK} {line}", "x").startswith(message)


def test_a_raised_budget_lets_the_run_start(ip):
    ip.run_cell_magic("reflect", f"{QUICK} --rounds 20000 --max-generations 50000 -o res", "x")
    assert ip.user_ns["res"].stop_reason == "feedback_stop"


def test_config_rounds_count_towards_the_budget(ip):
    ip.run_line_magic("config", "ReflectMagics.rounds = 6000")
    assert usage_error(ip, "reflect", QUICK, "x").startswith("%%reflect: this run could make about 12,001 model calls")


def test_reflect_eval_refuses_an_evaluation_far_too_large_with_the_estimate(ip):
    assert usage_error(ip, "reflect_eval", "rg:basic_arithmetic -n 1000000000 -m bot --methods baseline") == (
        "%reflect_eval: this evaluation could make about 1,000,000,000 model calls (1,000,000,000 items x 1 calls "
        "per item over 1 methods); lower -n or the methods' rounds/samples/agents, or raise --max-generations")


@pytest.mark.parametrize("line, message", [
    ("--max-tokens 2000000", "argument --max-tokens: must be at most 1,000,000 (more than any model's context), "
                             "got 2,000,000"),
    ("--seed -1", "argument --seed: must be between 0 and 4294967295, got -1"),
    ("--seed 4294967296", "argument --seed: must be between 0 and 4294967295, got 4294967296"),
    ("--schedule 'cyclic(shift=2)'", "argument --schedule: schedule 'cyclic(shift=2)': `shift` must be in [-1, 1], "
                                     "got 2"),
])
def test_out_of_range_numbers_are_refused(ip, line, message):
    assert message in usage_error(ip, "reflect", f"{QUICK} {line}", "x")


@pytest.mark.parametrize("magic", ["reflect", "critique", "debate", "tree"])
def test_error_lines_point_at_a_help_ipython_finds(ip, magic):
    message = usage_error(ip, magic, QUICK + " --bogus", "x")
    help_name = re.search(r"see `(.+)\?`", message).group(1)
    assert help_name == f"%%{magic}"
    assert ip.find_cell_magic(help_name[2:]) is not None


@pytest.mark.parametrize("magic, options", [
    ("reflect", ["--rounds", "--history", "--templates", "--max-generations", "--model", "--schedule", "--output"]),
    ("critique", ["--critic", "--refine-policy", "--max-generations", "--temperature"]),
    ("debate", ["--method", "--agents", "--models", "--aggregator", "--max-generations"]),
    ("tree", ["--method", "--iterations", "--branch", "--depth", "--verifier", "--game24"]),
])
def test_the_help_of_every_cell_magic_lists_its_options(ip, magic, options, capsys):
    ip.run_line_magic("pinfo", f"%%{magic}")
    shown = capsys.readouterr().out
    assert all(option in shown for option in options), shown


@pytest.mark.parametrize("magic, options", [
    ("reflect_eval", ["--methods", "--checker", "--batch-size", "--max-generations", "--output"]),
    ("reflect_sql", ["--write", "--output", "--chart", "--path"]),
])
def test_the_help_of_every_line_magic_lists_its_options(ip, magic, options, capsys):
    ip.run_line_magic("pinfo", f"%{magic}")
    shown = capsys.readouterr().out
    assert all(option in shown for option in options), shown


@pytest.mark.parametrize("line", ["--method bfs -b 1 -d 1000000000", "--method bfs -b 3 -d 1000000000",
                                  "--method mcts -b 2 -d 1000000000 --iterations 1000000000"])
def test_a_tree_depth_far_too_large_is_refused_with_the_estimate(ip, line):
    # the estimate itself must not walk a billion layers (this returns in milliseconds)
    assert re.fullmatch(r"this search would create about [\d,]+ nodes \(branch \d, depth 1000000000\); "
                        r"raise max_nodes or lower branch/depth", usage_error(ip, "tree", f"{QUICK} {line}", "x"))


def test_a_clean_shell_forgets_the_variables_and_config_a_test_set():
    with clean_shell() as shell:
        shell.user_ns["kind"] = "left behind"
        shell.run_line_magic("config", "ReflectMagics.model = 'scripted:left behind'")
    with clean_shell() as shell:
        assert "kind" not in shell.user_ns
        assert shell.magics_manager.registry["ReflectMagics"].model == ""
