"""Running a model's Python code in a child process with time, memory and output limits.

The ``tool:python`` feedback source (:mod:`reflectnb.strategies.feedback`) runs
the code a model wrote, the way CRITIC (Gou et al. 2023) runs programs to
check an answer. :func:`run_python` starts ``python -I`` (isolated: no
``PYTHON*`` variables, no user site-packages, the script's folder not on the
path) in a fresh, empty temporary folder, with an environment that holds only
``PATH`` and ``LANG`` (so API keys and other secrets in the parent's
environment are not inherited), in its own process group, with:

* a **wall-time limit** (the whole process group is killed when it passes);
* a **memory limit** (``RLIMIT_AS`` set in the child before ``exec``), plus
  ``RLIMIT_CPU`` and ``RLIMIT_FSIZE`` (files it writes) as backstops;
* an **output limit**: stdout and stderr together are read up to
  ``output_bytes``; past that the process group is killed.

A run that hits a limit returns a :class:`RunOutcome` whose ``limit`` names
it; the caller records that as a failed feedback and the loop goes on.

This is a **guard against accidents** (a loop that never ends, a list that eats
the machine, a print in a loop), **not a security boundary**: the child runs as
the same user, can read every file that user can read, open network sockets and
write files outside its folder. Run untrusted code in a container or VM.
Needs a POSIX system (``resource``, process groups).

Non-goals: sandboxing against malice; languages other than Python.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from reflectnb.errors import OptionError

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Limits:
    """What a child may use: seconds of wall time, bytes of memory, bytes of output."""

    seconds: float = 5.0
    memory_bytes: int = 512 * 2**20
    output_bytes: int = 8192

    def __post_init__(self) -> None:
        for name in ("seconds", "memory_bytes", "output_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise OptionError(f"sandbox limit `{name}` must be a positive number, got {value!r}")


@dataclass
class RunOutcome:
    """What a child did: exit code, output (cut at the limit), and which limit stopped it (if any)."""

    returncode: int | None
    output: str
    limit: str | None = None
    truncated: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.limit is None and self.returncode == 0


def run_python(code: str, limits: Limits | None = None) -> RunOutcome:
    """Run ``code`` with ``python -I`` in an empty temporary folder under ``limits``.

    Examples
    --------
    >>> run_python("print(6 * 7)").output
    '42\\n'
    >>> run_python("while True: pass", Limits(seconds=0.5)).limit
    'time'
    """
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="reflectnb-python-") as folder:
        path = os.path.join(folder, "answer.py")  # beside, not inside, the empty working folder
        with open(path, "w", encoding="utf-8") as script:
            script.write(code)
        run_dir = os.path.join(folder, "work")
        os.mkdir(run_dir)
        outcome = _supervise([sys.executable, "-I", path], run_dir, limits)
    outcome.output = outcome.output.replace(path, "answer.py")  # tracebacks name the script, not our folder
    return outcome


def _supervise(argv: list[str], cwd: str, limits: Limits) -> RunOutcome:
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=dict(ENV), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_child_limits(limits))
    reader = _Reader(proc, limits.output_bytes)
    reader.start()
    limit = None
    try:
        proc.wait(timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        limit = "time"
    finally:
        _kill_group(proc)
        proc.wait()
        reader.join(timeout=1.0)  # a grandchild in another session may hold the pipe open
    limit = limit or ("output" if reader.overflow else _memory_limit(proc.returncode, reader.text()))
    return RunOutcome(proc.returncode, reader.text(), limit, reader.overflow, time.monotonic() - start)


def _child_limits(limits: Limits) -> Callable[[], None]:
    """The ``preexec_fn``: set resource limits in the child, after fork and before exec."""
    memory, cpu = int(limits.memory_bytes), int(limits.seconds) + 1

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: its pgid is its pid
    except (ProcessLookupError, PermissionError):
        pass


def _memory_limit(returncode: int | None, output: str) -> str | None:
    """``"memory"`` when the child died of the memory limit (a MemoryError, or killed by a signal after one)."""
    if returncode == 0:
        return None
    if "MemoryError" in output or returncode in (-signal.SIGSEGV, -signal.SIGABRT) and not output:
        return "memory"
    if returncode == -signal.SIGXCPU:
        return "time"
    return None


class _Reader(threading.Thread):
    """Reads the child's output up to ``cap`` bytes; one byte more and the process group is killed."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int):
        super().__init__(daemon=True)
        self.proc, self.cap = proc, int(cap)
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def run(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(65536):
            keep = chunk[: self.cap - self.size]
            self.chunks.append(keep)
            self.size += len(keep)
            if len(keep) < len(chunk):
                self.overflow = True
                _kill_group(self.proc)
                break
        self.proc.stdout.close()

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")
