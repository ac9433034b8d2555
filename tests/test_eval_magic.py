"""The %reflect_eval line: options, notebook variables, errors; and the embedded model end to end."""

from __future__ import annotations

import pytest

from reflectnb.errors import CapabilityError

from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.errors import OptionError
from reflectnb.magics.evaluate import parse_eval_line, reflect_eval, reflect_eval_parser

ROWS = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]


def namespace():
    return {"qs": ROWS, "model": ScriptedBackend(lambda p, i: "The answer is 2"),
            "lenient": lambda predicted, gold: True}


def test_the_line_reads_tasks_methods_and_options():
    opts = parse_eval_line('rg:chain_sum --methods "baseline, reflect(rounds=1)" -n 5 --batch-size 4 '
                           '--checker numeric:0.5 --max-tokens 32 --seed 3 --eval-id mine -o res')
    assert (opts.tasks, opts.methods, opts.n, opts.batch_size, opts.checker) == \
        ("rg:chain_sum", "baseline, reflect(rounds=1)", 5, 4, "numeric:0.5")
    assert (opts.max_tokens, opts.seed, opts.eval_id, opts.output) == (32, 3, "mine", "res")


def test_tasks_model_and_checker_come_from_notebook_variables():
    ns = namespace()
    result = reflect_eval("qs --methods baseline -m model --checker lenient --no-trace --no-stream -o res", ns)
    assert ns["res"] is result
    assert result.summary().iloc[0][["n", "correct"]].tolist() == [3, 3]
    assert result.model == "scripted"


def test_the_schedule_option_reaches_every_method_without_one():
    ns = namespace()
    with pytest.raises(CapabilityError, match="schedule needs a local model with a tokenizer; .scripted. has none"):
        reflect_eval("qs --methods baseline -m model --schedule 'constant(2)' --no-trace --no-stream", ns)


@pytest.mark.parametrize("line, match", [
    ("", "needs a task source"),
    ("qs --methods reflexion -m model", "unknown method 'reflexion'"),
    ("qs --batch-size 0", "--batch-size: must be a positive integer"),
    ("qs --bogus", "unrecognized arguments: --bogus"),
    ("qs --methods 'baseline", "check the quotes"),
])
def test_bad_lines_say_what_is_wrong(line, match):
    with pytest.raises(OptionError, match=match):
        reflect_eval(line, namespace())


def test_a_checker_variable_that_is_not_a_function_is_refused():
    ns = {**namespace(), "n": 3}
    with pytest.raises(OptionError, match="--checker n: the variable 'n' is a int, not a function"):
        reflect_eval("qs -m model --checker n --no-trace --no-stream", ns)


def test_the_help_lists_the_methods_and_options():
    text = reflect_eval_parser().format_help()
    for word in ("--methods", "self_consistency", "--batch-size", "--checker", "--eval-id", "--fresh", "--schedule"):
        assert word in text


@pytest.fixture()
def ip(trace_file):
    """A real IPython shell with the extension loaded; the %config defaults are put back afterwards."""
    from magic_shell import clean_shell

    with clean_shell() as shell:
        shell.user_ns["qs"] = ROWS
        yield shell


def test_the_magic_takes_model_temperature_and_max_tokens_from_config(ip):
    ip.run_line_magic("config", "ReflectMagics.model = 'scripted:The answer is 0|The answer is 2|The answer is 4'")
    ip.run_line_magic("config", "ReflectMagics.temperature = 0.5")
    ip.run_line_magic("config", "ReflectMagics.max_tokens = 2")
    ip.run_line_magic("reflect_eval", "qs --methods baseline --no-stream -o res")
    res = ip.user_ns["res"]
    assert res.model == "scripted:The answer is 0|The answer is 2|The answer is 4"
    assert (res.settings["temperature"], res.settings["max_tokens"]) == (0.5, 2)
    assert [r["final_text"] for r in res.rows] == ["The answer"] * 3  # two scripted tokens each: unparsed


def test_options_on_the_line_win_over_config(ip):
    ip.run_line_magic("config", "ReflectMagics.model = 'scripted:never used'")
    ip.run_line_magic("config", "ReflectMagics.max_tokens = 2")
    ip.user_ns["bot"] = ScriptedBackend(lambda p, i: "The answer is " + p.split("What is ")[1].split(" ")[0])
    res = ip.run_line_magic("reflect_eval", "qs --methods baseline -m bot --max-tokens 8 -t 0 --no-trace -o res")
    assert (res.model, res.settings["max_tokens"], res.settings["temperature"]) == ("scripted", 8, 0.0)
    assert res.summary()["correct"].tolist() == [1]  # "0 + 0" → 0 is right; 1 and 2 are not doubled


@pytest.mark.parametrize("line, match", [
    ("qs --bogus 3", r"%reflect_eval: unrecognized arguments: --bogus 3  \(see `%reflect_eval\?` for the options\)"),
    ("qs --batch-size 0", "argument --batch-size: must be a positive integer, got 0"),
    ("qs --methods 'baseline, reflexion'", "unknown method 'reflexion'; known methods: baseline, reflect, critique"),
    ("qs --methods 'reflect(round=2)'", r"method 'reflect\(round=2\)': no option 'round'; its options: rounds"),
])
def test_a_wrong_option_or_an_unknown_method_is_a_one_line_usage_error(ip, line, match):
    from IPython.core.error import UsageError

    ip.run_line_magic("config", "ReflectMagics.model = 'scripted:unused'")
    with pytest.raises(UsageError, match=match):
        ip.run_line_magic("reflect_eval", line)
