"""The methods new in #16, end to end on the embedded model, from their cell magics and their Python functions.

Sizes are tiny (a few tokens per step): what is checked is that each method really runs on the real model
through both surfaces and lands in the trace store, not what a 135M model answers.
"""

from __future__ import annotations

import pytest
from magic_shell import clean_shell

import reflectnb

pytestmark = pytest.mark.model
QUESTION = "What is 3 + 4?"


def stored_kinds() -> list[str]:
    from reflectnb.store import open_store

    return open_store().sql("SELECT kind FROM runs ORDER BY started_at")["kind"].tolist()


def test_leap_speculative_and_tool_feedback_run_from_their_magics_and_functions(trace_file):
    leap = reflectnb.leap(QUESTION, paths=2, turns=2, interval=8, summary_tokens=6, max_tokens=16)
    assert len({s.agent for s in leap.steps}) == 2 and leap.stop_reason
    spec = reflectnb.speculative(QUESTION, large="smollm2-135m", max_tokens=24, segment_tokens=6,
                                 takeover_tokens=6, verify_tokens=8)
    assert spec.steps and spec.stop_reason in ("finished", "max_tokens", "repetition")
    fed = reflectnb.reflect(QUESTION, rounds=1, feedback="tool:calc", max_tokens=16)
    assert [s.attributes.get("feedback_source") for s in fed.steps if s.kind == "feedback"] in ([], ["tool:calc"])
    with clean_shell() as shell:
        shell.run_cell_magic("leap", "-p 2 --turns 2 --interval 8 --summary-tokens 6 --max-tokens 16 "
                                     "--no-stream -o a", QUESTION)
        shell.run_cell_magic("speculative", "--large smollm2-135m --segment-tokens 6 --takeover-tokens 6 "
                                            "--verify-tokens 8 --max-tokens 24 --no-stream -o b", QUESTION)
        shell.run_cell_magic("reflect", "-r 1 --feedback tool:calc --max-tokens 16 --no-stream -o c", QUESTION)
        assert all(shell.user_ns[name].run_id for name in "abc")
    assert stored_kinds() == ["leap", "speculative", "reflect"] * 2
