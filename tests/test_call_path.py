"""How far a ``%%reflect`` prompt travels to its DuckDB row: at most 15 calls across at most 10 files.

The stack is read at the moment the draft's step row is made for the trace store's writer (which inserts
it from its own thread), counting frames from the cell magic down; frames of the standard library and of
third-party packages (IPython's dispatch, contextlib) are not the project's and are left out.
"""

from __future__ import annotations

import sys
from pathlib import Path

from magic_shell import clean_shell

from reflectnb.backends.scripted import ScriptedBackend

PACKAGE = str(Path(__import__("reflectnb").__file__).resolve().parent)


def test_a_reflect_prompt_reaches_its_step_row_in_at_most_15_calls_across_10_files(trace_file):
    from reflectnb.store.recorder import RunRecorder

    stacks = []
    step_row = RunRecorder._step_row

    def spy(self, step, index):
        if not stacks:
            frame, chain = sys._getframe(), []
            while frame is not None:
                chain.append(frame)
                frame = frame.f_back
            stacks.append(chain)
        return step_row(self, step, index)

    RunRecorder._step_row = spy
    try:
        with clean_shell() as shell:
            shell.user_ns["bot"] = ScriptedBackend(["draft", "STOP"])
            shell.run_cell_magic("reflect", "-m bot --no-stream -r 1", "Write a line about rain.")
    finally:
        RunRecorder._step_row = step_row
    chain = stacks[0][1:]  # the spy stands where _step_row runs: it is counted by name below
    magic = max(i for i, f in enumerate(chain) if Path(f.f_code.co_filename).parent.name == "magics")
    ours = [f for f in chain[: magic + 1] if str(Path(f.f_code.co_filename).resolve()).startswith(PACKAGE)]
    path = [f"{_name(f.f_code.co_filename)}:{f.f_code.co_name}" for f in reversed(ours)] + ["recorder.py:_step_row"]
    files = {f.f_code.co_filename for f in ours}
    print(" -> ".join(path))
    assert len(path) <= 15, f"{len(path)} calls: {' -> '.join(path)}"
    assert len(files) <= 10, f"{len(files)} files: {sorted(Path(f).name for f in files)}"
    assert path[-1] == "recorder.py:_step_row" and path[0].startswith("magics/__init__.py")


def _name(filename: str) -> str:
    path = Path(filename)
    return f"{path.parent.name}/{path.name}" if path.name == "__init__.py" else path.name
