"""The magics, through a real IPython InteractiveShell."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from magic_shell import clean_shell

from reflectnb.errors import OptionError
from reflectnb.magics.options import fill_cell, parse_line


@pytest.fixture()
def ip(trace_file):
    with clean_shell() as shell:  # no variable or %config leaks into the next test
        yield shell


def test_load_ext_imports_no_heavy_library():
    code = ("from IPython.testing.globalipapp import start_ipython; ip = start_ipython(); "
            "ip.run_line_magic('load_ext', 'reflectnb'); import sys; "
            "print(sorted(m for m in ('torch', 'transformers', 'duckdb', 'anywidget', 'altair') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_reflectnb_magic_reports_version_model_paths_and_known_models(ip, trace_file):
    report = ip.run_line_magic("reflectnb", "")
    text = str(report)
    assert text.startswith("reflectnb 0.1.0")
    assert str(trace_file) in text and "smollm2-135m" in text and "openai:<...>" in text
    assert "<script>" not in report._repr_html_()


def test_configured_model_shows_in_the_report(ip):
    ip.run_line_magic("config", "ReflectMagics.model = 'hf:/models/x'")
    try:
        assert "hf:/models/x" in str(ip.run_line_magic("reflectnb", ""))
    finally:
        ip.run_line_magic("config", "ReflectMagics.model = ''")


@pytest.mark.parametrize("magic", ["reflect", "critique", "debate"])
def test_an_empty_cell_is_a_usage_error(ip, magic):
    with pytest.raises(UsageError, match=f"%%{magic}: the cell is empty"):
        ip.run_cell_magic(magic, "", "   \n")


@pytest.mark.parametrize("line, message", [
    ("--bogus 3", "unrecognized arguments: --bogus 3"),
    ("--rounds 0", "argument -r/--rounds: must be a positive integer, got 0"),
    ("--rounds x", "must be a positive integer, got 'x'"),
    ("-t -1", "argument -t/--temperature"),
    ('--schedule "cyclic(', "cannot parse the options"),
])
def test_bad_options_are_one_line_usage_errors(ip, line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ip.run_cell_magic("reflect", line, "Write a poem.")


def test_debate_agents_must_be_a_positive_count(ip):
    with pytest.raises(UsageError, match="--agents: must be a positive integer, got 0"):
        ip.run_cell_magic("debate", "--agents 0", "Is 7 prime?")


def test_options_parse_into_typed_values():
    opts = parse_line("debate", "--method mad -r 2 --models a,b -t 0.7 --max-tokens 40 -o res --no-stream")
    assert (opts.method, opts.rounds, opts.models, opts.temperature, opts.max_tokens, opts.output,
            opts.no_stream) == ("mad", 2, "a,b", 0.7, 40, "res", True)


def test_cells_pull_python_variables_and_keep_doubled_braces():
    assert fill_cell("Solve {task}; answer as {{x}}", {"task": "2+2"}) == "Solve 2+2; answer as {x}"
    with pytest.raises(OptionError, match="no Python variable 'missing' exists"):
        fill_cell("Use {missing}", {})
    with pytest.raises(OptionError, match="literal braces"):
        fill_cell("a { b", {})


def test_a_missing_variable_in_a_cell_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="no Python variable 'nope'"):
        ip.run_cell_magic("reflect", "", "Improve {nope}")
